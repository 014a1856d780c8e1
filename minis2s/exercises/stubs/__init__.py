"""The exercises as a learner gets them: ``minis2s exercise start DIR`` copies these files
into DIR. Each holds its task in its docstring and a function that raises
``NotImplementedError`` until it is written."""
