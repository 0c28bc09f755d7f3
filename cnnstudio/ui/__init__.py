"""cnnstudio.ui"""
