"""Where prepared datasets live and where local source files are looked for."""
import os

# The repository's sibling folder with the project's shared data (Omniglot zips,
# MiniImagenet split CSVs), when present.
SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))


def data_dir(path=None):
    """The TFDS data directory: ``path``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
    if path:
        return os.path.abspath(os.path.expanduser(path))
    return os.path.abspath(os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))


def shared_source(name):
    """``../shared/data/<name>`` beside the checkout, or None when it is not there."""
    path = os.path.join(SHARED_DATA, name)
    return path if os.path.isdir(path) else None


def array_cache_dir(data_dir, name, version):
    """Where a dataset's decoded arrays are cached: beside TFDS's own folders."""
    return os.path.join(data_dir, "maml_tf_arrays", name, str(version))
