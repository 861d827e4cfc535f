"""Generated blocks of a markdown file (the README's results summary, a benchmark's
table): the text between two marker lines, rewritten whole."""


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
