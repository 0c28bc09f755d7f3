"""Layer descriptions, grouped by family. The registry collects them."""
