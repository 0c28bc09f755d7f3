"""Tests of cnnstudio.data (a package, so module names never clash with other test dirs)."""
