"""Course machinery (issue 31): the sealed class challenge (:mod:`.challenge`), the
grading engine (:mod:`.grade`) and the expected values of the exercises' checks
(:mod:`.expected`). Command line: ``python -m helpers.course --help``.

This package teaches the book; the science modules never import it.
"""
