"""cnnstudio.core"""
