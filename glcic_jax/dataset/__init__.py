"""Building a face dataset: collect (Selenium), download, prepare (align and crop), filters (which faces stay), review, folders (splits)."""
