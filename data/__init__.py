"""Where texts come from and how ids become batches (chapter 10, "Putting Our Texts into Batches")."""
