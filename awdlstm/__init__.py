"""The AWD-LSTM network, its weights on disk, and the loops that train it (chapter 10, "Training a Text Classifier")."""
