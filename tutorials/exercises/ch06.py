# %% setup
# Chapter 6's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn


def xor_data():
    """Section 9's data: 256 points in [-1, 1]² (inputs (256, 2) float32) and their classes
    (labels (256,) int64: 1 where x₁·x₂ > 0, else 0), the same on every call."""
    rng = np.random.default_rng(6)
    points = rng.uniform(-1, 1, (256, 2))
    labels = mt.tensor((points[:, 0] * points[:, 1] > 0).astype(np.int64))
    return mt.tensor(points.astype(np.float32)), labels


# %% exercise ch06-residual (2 points)
# Residual(sublayer): an nn.Module that stores the module it wraps in the attribute `sublayer`
# (so that it is registered) and whose forward(x) returns x + sublayer(x), for any sublayer
# that keeps the shape of x. Its parameters are then named "sublayer.<name>".
# BEGIN SOLUTION
class Residual(nn.Module):
    """x + sublayer(x).  Shapes: x (..., D) -> (..., D); the sublayer must keep the shape."""

    def __init__(self, sublayer):
        super().__init__()
        self.sublayer = sublayer  # a Module attribute: registered as a sub-module

    def forward(self, x):
        return x + self.sublayer(x)
# END SOLUTION

# %% check ch06-residual
mt.manual_seed(0)
ff = nn.FeedForward(4, 8)
residual = Residual(ff)
names = [name for name, _ in residual.named_parameters()]
want = ["sublayer." + name for name, _ in ff.named_parameters()]
assert names == want, (
    f"Residual(FeedForward(4, 8)) lists the parameters {names}, but should list each of the "
    "FeedForward's parameters under the prefix 'sublayer.': assign the wrapped module to "
    "self.sublayer (after super().__init__()), not to a list or a dict, so that it is "
    "registered as a sub-module")
x = mt.randn(2, 3, 4)
with mt.no_grad():
    got, plain = residual(x).numpy(), ff(x).numpy()
assert got.shape == (2, 3, 4), f"Residual(ff)(x) has shape {got.shape}, not x's (2, 3, 4)"
gap = np.abs(got - (x.numpy() + plain)).max()
assert gap < 1e-6, (
    f"Residual(ff)(x) differs from x + ff(x) by up to {gap:.3g}: forward should add the "
    "input to the sub-layer's output (the skip connection)")
with mt.no_grad():
    linear = nn.Linear(3, 3)
    y = mt.randn(5, 3)
    gap = np.abs(Residual(linear)(y).numpy() - (y.numpy() + linear(y).numpy())).max()
assert gap < 1e-6, f"Residual(nn.Linear(3, 3))(y) differs from y + linear(y) by up to {gap:.3g}"
assert mt.gradcheck_module(Residual(nn.FeedForward(4, 8)).double(), mt.randn(2, 3, 4)), \
    "mt.gradcheck_module rejects Residual(FeedForward(4, 8)): build forward from tensor ops only"

# %% wrong ch06-residual
class Residual(nn.Module):  # noqa: F811  (the sub-layer kept in a list: not registered)
    def __init__(self, sublayer):
        super().__init__()
        self.sublayers = [sublayer]

    def forward(self, x):
        return x + self.sublayers[0](x)

# %% wrong ch06-residual
class Residual(nn.Module):  # noqa: F811  (the skip connection forgotten)
    def __init__(self, sublayer):
        super().__init__()
        self.sublayer = sublayer

    def forward(self, x):
        return self.sublayer(x)

# %% exercise ch06-shared-linear (2 points)
# Twice: an nn.Module whose __init__ creates ONE nn.Linear(3, 3), assigned to self.first, and
# assigns that same object to self.second; forward(x) returns self.second(self.first(x)).
# listed: how many (name, parameter) pairs Twice().named_parameters() yields (an int).
# counted: Twice().num_parameters() (an int).
# weight_grad(x, weight, bias, g): a NumPy (3, 3) array, the .grad of the shared weight after
# backward of (twice(x) * g).sum(), written with NumPy from the formula (x: (N, 3), weight
# (3, 3) in the (in, out) layout, bias (3,), g: (N, 3), the gradient reaching the output).
# BEGIN SOLUTION
class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 3)
        self.second = self.first  # the same object

    def forward(self, x):
        return self.second(self.first(x))


listed = len(list(Twice().named_parameters()))
counted = Twice().num_parameters()


def weight_grad(x, weight, bias, g):
    # h = x W + b, y = h W + b: W receives a gradient from each of its two uses, and they add
    h = x @ weight + bias
    return x.T @ (g @ weight.T) + h.T @ g
# END SOLUTION

# %% check ch06-shared-linear
twice = Twice()
names = [name for name, _ in twice.named_parameters()]
assert twice.first is twice.second, "Twice's first and second should be the same nn.Linear object"
assert listed == len(names), (
    f"listed is {listed!r}, which is not the number of pairs Twice().named_parameters() "
    "yields: count them (is a parameter reachable under two names listed twice?)")
assert counted == twice.num_parameters(), (
    f"counted is {counted!r}, which is not what Twice().num_parameters() returns: call it (is "
    "the shared Linear counted once or twice?)")
twice = Twice().double()
rng = np.random.default_rng(0)
x, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
(twice(mt.tensor(x)) * mt.tensor(g)).sum().backward()
by_hand = np.asarray(weight_grad(x, twice.first.weight.numpy(), twice.first.bias.numpy(), g))
assert by_hand.shape == (3, 3), f"weight_grad(...) has shape {by_hand.shape}, not (3, 3)"
gap = np.abs(by_hand - twice.first.weight.grad).max()
assert gap < 1e-8, (
    f"weight_grad differs from the shared weight's .grad by up to {gap:.3g}: with h = x W + b "
    "and y = h W + b, the weight's .grad is the sum of the gradients of both uses (of the "
    "first one, through h, and of the second)")

# %% wrong ch06-shared-linear
def weight_grad(x, weight, bias, g):  # noqa: F811  (only the last use: hᵀg)
    return (x @ weight + bias).T @ g

# %% wrong ch06-shared-linear
counted = 2 * (3 * 3 + 3)  # the shared Linear counted under both attributes

# %% exercise ch06-init-variance (2 points)
# With x = mt.randn(2048, 512) (x ~ N(0, 1)), measured inside mt.no_grad():
# default_variance: x's output variance, y.var(), through nn.Linear(512, 512) as created.
# xavier_variance: the same through an nn.Linear(512, 512) whose weight is re-initialised with
#     nn.init.xavier_uniform and whose bias is set to 0.
# relu_mean_square: E[h²], the mean of h * h, for h = F.relu(that Xavier layer(x)).
# he_mean_square: E[h²] for h = F.relu(layer(x)) with He's initialisation, weight N(0, 2/512)
#     (nn.init.normal(weight, std=...)) and bias 0.
# closer_to_preserving: "default" or "xavier", the initialisation whose output variance is
#     closer to the input's.
# BEGIN SOLUTION
mt.manual_seed(1)
x = mt.randn(2048, 512)
with mt.no_grad():
    default = nn.Linear(512, 512)
    default_variance = default(x).var().item()
    xavier = nn.Linear(512, 512)
    nn.init.xavier_uniform(xavier.weight)
    xavier.bias.data[...] = 0.0
    xavier_variance = xavier(x).var().item()
    h = F.relu(xavier(x))
    relu_mean_square = (h * h).mean().item()
    he = nn.Linear(512, 512)
    nn.init.normal(he.weight, std=(2 / 512) ** 0.5)
    he.bias.data[...] = 0.0
    h = F.relu(he(x))
    he_mean_square = (h * h).mean().item()
closer_to_preserving = "xavier"
# END SOLUTION

# %% check ch06-init-variance
assert 0.30 < default_variance < 0.37, (
    f"default_variance is {default_variance:.4g}: measure the variance of the layer's output "
    "y = default(x), not of its weight, with the layer as nn.Linear creates it")
assert 0.93 < xavier_variance < 1.07, (
    f"xavier_variance is {xavier_variance:.4g}: re-initialise the weight with "
    "nn.init.xavier_uniform, zero the bias, and take the variance of the output")
assert 0.45 < relu_mean_square < 0.55, (
    f"relu_mean_square is {relu_mean_square:.4g}: take the mean of h * h (the second moment "
    "that feeds the next layer), not h.var(), for h = relu of the Xavier layer's output")
assert 0.9 < he_mean_square < 1.1, (
    f"he_mean_square is {he_mean_square:.4g}: He's weights have variance 2/fan_in = 2/512, "
    "i.e. standard deviation √(2/512); zero the bias and take the mean of h * h after the ReLU")
closest = "xavier" if abs(xavier_variance - 1) < abs(default_variance - 1) else "default"
assert closer_to_preserving == closest, (
    f"closer_to_preserving is {closer_to_preserving!r}, but your variances are "
    f"{default_variance:.3g} (default) and {xavier_variance:.3g} (xavier) for an input of "
    "variance 1")

# %% wrong ch06-init-variance
with mt.no_grad():
    relu_mean_square = F.relu(xavier(x)).var().item()  # the variance, not E[h²]

# %% wrong ch06-init-variance
default_variance = default.weight.var().item()  # the weight's variance, not the output's

# %% exercise ch06-xor-settings (3 points)
# The full 150-step runs of the exercise, in a few seconds. inputs, labels = xor_data().
# train_xor(model, optimizer, steps=150) -> (loss, accuracy): full-batch training of `model` on
#     the XOR data with F.cross_entropy (zero_grad, forward, backward, step, `steps` times),
#     then the loss (a float) and the accuracy (a float in [0, 1], argmax of the logits vs
#     labels) of the trained model on the same data.
# results: a dict of the accuracies after 150 steps of four settings, each model built right
#     after mt.manual_seed(6):
#     "no hidden": nn.Linear(2, 2) with mt.optim.Adam(lr=0.03);
#     "hidden=2": nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)), Adam(lr=0.03);
#     "hidden=64": the same with 64 hidden units, Adam(lr=0.03);
#     "hidden=64 SGD": the hidden=64 model with mt.optim.SGD(lr=0.03).
# fail_to_learn: the set of the keys of results whose accuracy is below 0.75.
# linear_can_learn_xor: True or False: could a model with no hidden layer, trained long
#     enough with the best optimizer, classify XOR correctly?
# BEGIN SOLUTION
def train_xor(model, optimizer, steps=150):
    inputs, labels = xor_data()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
    with mt.no_grad():
        logits = model(inputs)
        accuracy = (logits.numpy().argmax(axis=1) == labels.numpy()).mean()
        return F.cross_entropy(logits, labels).item(), float(accuracy)


def mlp(hidden):
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))


settings = {
    "no hidden": (lambda: nn.Linear(2, 2), mt.optim.Adam),
    "hidden=2": (lambda: mlp(2), mt.optim.Adam),
    "hidden=64": (lambda: mlp(64), mt.optim.Adam),
    "hidden=64 SGD": (lambda: mlp(64), mt.optim.SGD),
}
results = {}
for name, (make_model, optimizer_class) in settings.items():
    mt.manual_seed(6)
    model = make_model()
    results[name] = train_xor(model, optimizer_class(model.parameters(), lr=0.03))[1]
fail_to_learn = {name for name, accuracy in results.items() if accuracy < 0.75}
linear_can_learn_xor = False  # its boundary is one straight line: XOR is not separable
# END SOLUTION

# %% check ch06-xor-settings
mt.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
first_loss, _ = train_xor(model, mt.optim.Adam(model.parameters(), lr=0.03), steps=0)
loss, accuracy = train_xor(model, mt.optim.Adam(model.parameters(), lr=0.03), steps=80)
assert 0.5 < first_loss < 1.0, (
    f"train_xor(model, optimizer, steps=0) gives loss {first_loss:.3g}, but an untrained model "
    "should be near ln 2 ≈ 0.69: return the cross-entropy of the model's logits on xor_data()")
assert accuracy > 0.9 and loss < 0.5 * first_loss, (
    f"after 80 Adam steps (lr 0.03) a 16-unit MLP reaches only loss {loss:.3g} and accuracy "
    f"{accuracy:.1%} with train_xor: call optimizer.zero_grad() before every backward (the "
    "gradients accumulate), and return the accuracy as the fraction of argmax(logits) == labels")
want_keys = {"no hidden", "hidden=2", "hidden=64", "hidden=64 SGD"}
assert set(results) == want_keys, f"results should have the keys {sorted(want_keys)}"
mt.manual_seed(6)
model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 2))
again = train_xor(model, mt.optim.SGD(model.parameters(), lr=0.03))[1]
assert abs(results["hidden=64 SGD"] - again) < 0.02, (
    f"results['hidden=64 SGD'] is {results['hidden=64 SGD']!r}, but train_xor gives {again:.3f} "
    "for that setting: build the model right after mt.manual_seed(6) and train 150 steps")
assert results["hidden=64"] > 0.95 and results["no hidden"] < 0.75, (
    f"results are {results}: the 64-unit MLP with Adam should learn XOR, the linear model "
    "cannot; check the settings and the seed")
for name, accuracy in results.items():
    assert (name in fail_to_learn) == (accuracy < 0.75), (
        f"fail_to_learn is {fail_to_learn}, but results[{name!r}] is {accuracy:.3f}: the set "
        "holds exactly the settings whose accuracy is below 0.75")
assert linear_can_learn_xor is False, (
    f"linear_can_learn_xor is {linear_can_learn_xor!r}: the logits of a model with no hidden "
    "layer are linear in x, so its decision boundary is one straight line; can a line put "
    "quadrants I and III on one side and II and IV on the other?")

# %% wrong ch06-xor-settings
def train_xor(model, optimizer, steps=150):  # noqa: F811  (no zero_grad: gradients pile up)
    inputs, labels = xor_data()
    for _ in range(steps):
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
    with mt.no_grad():
        logits = model(inputs)
        accuracy = (logits.numpy().argmax(axis=1) == labels.numpy()).mean()
        return F.cross_entropy(logits, labels).item(), float(accuracy)

# %% wrong ch06-xor-settings
fail_to_learn = {"no hidden"}  # a hidden layer of 2 units taken to be enough
