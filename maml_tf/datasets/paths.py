"""Where prepared datasets live, and the small source files shipped inside the package."""
import os

# Files shipped with maml_tf (e.g. the MiniImagenet class-split CSVs), one folder each.
PACKAGE_DATA = os.path.dirname(os.path.abspath(__file__))


def data_dir(path=None):
    """The TFDS data directory: ``path``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
    if path:
        return os.path.abspath(os.path.expanduser(path))
    return os.path.abspath(os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))


def bundled(name):
    """The folder ``name`` shipped inside ``maml_tf/datasets/``."""
    return os.path.join(PACKAGE_DATA, name)


def array_cache_dir(data_dir, name, version):
    """Where a dataset's decoded arrays are cached: beside TFDS's own folders."""
    return os.path.join(data_dir, "maml_tf_arrays", name, str(version))
