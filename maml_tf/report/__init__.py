"""Results: the versioned record schema (:mod:`.schema`), record builders per experiment
kind (:mod:`.records`) and the one renderer of table.md, PNGs and the README summary
(:mod:`.render`, :mod:`.tables`, :mod:`.plots`, :mod:`.summary`)."""
from maml_tf.report.render import write
from maml_tf.report.schema import SCHEMA_VERSION, SchemaError, load

__all__ = ["SCHEMA_VERSION", "SchemaError", "load", "write"]
