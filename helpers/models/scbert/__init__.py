"""scBERT* (chapter 5): placeholder, filled below."""
