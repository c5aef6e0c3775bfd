"""Line-aligned parallel text: line i of the source file translates line i of the target file.

The Multi30k layout (task 1, Elliott et al. 2016) is one folder of such files, gzipped or not:

    train.en  train.de  train.fr    29,000 image captions and their translations
    val.en    val.de    ...          1,014
    test_2016_flickr.en ...          1,000

Files are read as strict UTF-8 (``errors="replace"`` as in ``read_text``).
"""

from pathlib import Path

from minitransformer.data.errors import DataFormatError
from minitransformer.data.text_io import read_lines

__all__ = ["load_multi30k", "read_parallel"]

SPLIT_ALIASES = {"valid": "val", "validation": "val", "test": "test_2016_flickr"}


def read_parallel(source_path, target_path, errors="strict"):
    """Pairs (source line, target line) from two line-aligned files (plain or gzip).

    Raises DataFormatError when the files have different numbers of lines.
    """
    sources = read_lines(source_path, errors, "read_parallel")
    targets = read_lines(target_path, errors, "read_parallel")
    if len(sources) != len(targets):
        raise DataFormatError(
            f"read_parallel: {Path(source_path).name} has {len(sources)} lines but "
            f"{Path(target_path).name} has {len(targets)}; line-aligned files need as many"
        )
    return list(zip(sources, targets))


def _find(folder, split, language):
    for name in (f"{split}.{language}", f"{split}.{language}.gz"):
        if (folder / name).is_file():
            return folder / name
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise FileNotFoundError(f"load_multi30k: {folder} has no {split}.{language} or "
                            f"{split}.{language}.gz (it holds {present})")


def load_multi30k(path, split="train", source="en", target="de", errors="strict"):
    """Multi30k pairs (source sentence, target sentence) from a folder in the task-1 layout.

    split: "train", "val" (or "valid") or "test_2016_flickr" (or "test"); any other
        ``<split>.<language>`` file in the folder works too.
    source, target: language codes, e.g. "en" and "de".
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"load_multi30k: no folder {folder}")
    split = SPLIT_ALIASES.get(split, split)
    return read_parallel(_find(folder, split, source), _find(folder, split, target), errors)
