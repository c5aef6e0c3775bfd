"""The Tensor's methods come from one table, and the core's imports run one way (no cycle)."""

import ast
import pathlib

import pytest

import minitransformer as mt
from minitransformer.tensor_methods import METHODS

PACKAGE = pathlib.Path(mt.__file__).parent

# Each core module may import only the modules before it in this order.
LAYERS = [
    ["errors.py"],
    ["backend.py"],
    ["tensor.py"],
    ["autograd.py"],
    [f"ops/{path.name}" for path in sorted((PACKAGE / "ops").glob("*.py"))],
    ["tensor_methods.py"],
]


def _module_path(name):
    """'minitransformer.ops.unary' -> 'ops/unary.py' (a package -> its __init__.py)."""
    parts = name.split(".")[1:]
    if (PACKAGE.joinpath(*parts)).is_dir():
        return "/".join([*parts, "__init__.py"])
    return "/".join(parts) + ".py"


def _imported_modules(path, root=PACKAGE):
    """Every minitransformer module a file imports, and whether each import sits below code."""
    tree = ast.parse((root / path).read_text())
    found = []
    seen_code = False
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = []
            module = getattr(node, "module", None) or ""
            if isinstance(node, ast.ImportFrom) and module.startswith("minitransformer"):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    is_module = (PACKAGE.joinpath(*candidate.split(".")[1:])).with_suffix(".py")
                    names.append(candidate if is_module.exists() else node.module)
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("minitransformer")]
            found += [(_module_path(name), seen_code) for name in names]
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            seen_code = True
    return found


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_core_imports_run_one_way_from_the_top_of_each_file(layer):
    allowed = {path for earlier in LAYERS[:layer] for path in earlier}
    for path in LAYERS[layer]:
        for module, after_code in _imported_modules(path):
            assert not after_code, f"{path} imports {module} below its code (a hidden cycle)"
            same_layer = layer == 4 and module.startswith("ops/")  # ops may use other ops
            assert module in allowed or same_layer, (
                f"{path} imports {module}, which comes later in the order "
                "errors <- backend <- tensor <- autograd <- ops <- tensor_methods"
            )


def test_the_import_checker_sees_an_import_below_the_code(tmp_path):
    (tmp_path / "late.py").write_text('"""doc"""\nX = 1\nfrom minitransformer import autograd\n')
    assert _imported_modules("late.py", root=tmp_path) == [("autograd.py", True)]


def test_every_table_entry_is_what_the_tensor_has():
    for name, method in METHODS.items():
        assert mt.Tensor.__dict__[name] is method, name


@pytest.mark.parametrize("name", ["exp", "log", "sum", "mean", "softmax", "reshape", "matmul",
                                  "clip", "masked_fill", "maximum", "pad", "split"])
def test_an_op_method_is_the_functional_op_itself(name):
    assert getattr(mt.Tensor, name) is getattr(mt, name)


def test_backward_is_the_engine_itself():
    assert mt.Tensor.backward is mt.autograd.backward


def test_operators_give_the_same_values_as_their_functions():
    x = mt.tensor([[1.0, -2.0], [3.0, 0.5]])
    y = mt.tensor([[0.5, 2.0], [-1.0, 4.0]])
    pairs = [(x + y, mt.add(x, y)), (2 - x, mt.sub(2, x)), (x * y, mt.mul(x, y)),
             (1 / y, mt.div(1, y)), (x ** 2, mt.pow(x, 2)), (x @ y, mt.matmul(x, y)),
             (-x, mt.neg(x)), (abs(x), mt.abs(x)), (x.T, mt.transpose(x)),
             (x.flatten(), mt.reshape(x, -1)), (x.where(x > 0, y), mt.where(x > 0, x, y))]
    for got, expected in pairs:
        assert got.shape == expected.shape
        assert (got.numpy() == expected.numpy()).all()
    assert ((x > 0) & (y > 0)).numpy().tolist() == [[True, False], [False, True]]
    assert (True & (x > 0)).numpy().tolist() == [[True, False], [True, True]]
    assert (~(x > 0)).numpy().tolist() == [[False, True], [False, False]]
    assert x.double().dtype == "float64" and x.double().float().dtype == "float32"
