"""Text -> tokens -> ids: the first stage of ULMFiT (chapter 10, "Tokenization" and "Numericalization").

Depends on numpy and regex only; nothing here imports torch or the other packages of the project.
"""
