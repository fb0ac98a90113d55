"""Building a face dataset: collect (Selenium), download, prepare (align and crop), review."""
