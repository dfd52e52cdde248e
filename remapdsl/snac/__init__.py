"""snac"""
