"""Generated blocks of a markdown file (the README's results summary, a benchmark's
table): the text between two marker lines, rewritten whole."""
import os


def replace_block(path, start, end, text):
    """Rewrite the text between the ``start`` and ``end`` marker lines of ``path``; appends
    the block when the markers are missing."""
    with open(path) as f:
        doc = f.read()
    head, found, rest = doc.partition(start)
    _, found_end, tail = rest.partition(end)
    if found and not found_end:
        raise ValueError(f"{path} has the marker line {start!r} but no {end!r} after it: "
                         "restore the end marker (the generated block ends there) and run again.")
    with open(path, "w") as f:
        f.write(head + start + "\n" + text + "\n" + end + tail)


def publish_table(path, start, end, lines):
    """Write ``lines`` (a generated table) between the markers of ``path`` and print them."""
    replace_block(path, start, end, "\n".join(lines))
    print("\n".join(lines))


def add_table_arguments(parser, script):
    """A benchmark's run-log options: ``--out`` appends the run's JSON lines to a file,
    ``--table JSONL`` writes the recorded runs into ``--readme`` (default: the README.md
    beside ``script``) and exits."""
    import os
    parser.add_argument("--out", default=None, help="append the run's JSON line(s) to this file")
    parser.add_argument("--table", metavar="JSONL", help="write the recorded runs into --readme and exit")
    parser.add_argument("--readme", default=os.path.join(os.path.dirname(os.path.abspath(script)), "README.md"))
