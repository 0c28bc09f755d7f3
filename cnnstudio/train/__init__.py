"""cnnstudio.train"""
