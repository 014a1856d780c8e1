"""Worked solutions to the exercises, one module per exercise, the same interface as its
stub (``minis2s/exercises/stubs/``). Each is written plainly, every backprop line
commented; the grader compares a learner's answer with these, and never shows their
values. ``minis2s exercise check NAME --solutions`` grades one of them."""
