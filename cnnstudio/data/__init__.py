"""cnnstudio.data"""
