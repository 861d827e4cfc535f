"""Few-shot datasets through tensorflow-datasets, prepared offline from local files.

``omniglot``: the TFDS ``omniglot`` builder fed from local zips (checksums checked
against the upstream and the known rebuilt files). ``mini_imagenet``: a TFDS builder
of this project's own, from the Ravi & Larochelle images + CSVs or the cache pickles.
Both load as uint8 arrays ``[classes, examples_per_class, H, W, C]`` for
``maml_tf.tasks.FewShotTasks``.
"""
from maml_tf.datasets.errors import DatasetNotFoundError
