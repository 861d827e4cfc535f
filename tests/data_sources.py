"""Local source files of this machine's real datasets, named by the tests themselves
(the package never looks outside the repository): ``$MAML_OMNIGLOT_SOURCE``, else the
project's shared folder beside the checkout, ``../shared/data/omniglot``."""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OMNIGLOT_SOURCE = os.path.abspath(
    os.environ.get("MAML_OMNIGLOT_SOURCE") or os.path.join(REPO_ROOT, "..", "shared", "data", "omniglot"))
