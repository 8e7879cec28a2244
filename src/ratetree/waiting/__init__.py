"""waiting"""
