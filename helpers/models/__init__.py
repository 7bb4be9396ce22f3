"""Models trained in the book (chapter 4): a compact scGPT-compatible network and the real GEARS.

``scgpt``: the architecture with the released parameter names and the checkpoint loader;
``training``: pretraining, fine-tuning and prediction in the predictions contract.
"""
