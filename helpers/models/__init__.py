"""Models trained in the book (chapter 4): scGPT's perturbation architecture
(versions 0.2.1 and 0.2.2+, released parameter names) and the real GEARS.

``scgpt``: the architecture with the released parameter names and the checkpoint loader;
``training``: pretraining, fine-tuning and prediction in the predictions contract.
"""
