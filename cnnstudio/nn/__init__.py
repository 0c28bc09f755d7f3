"""cnnstudio.nn"""
