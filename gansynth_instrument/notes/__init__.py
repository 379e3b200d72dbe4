"""Notes: made from the model (threads or processes), levelled, kept in memory and on disk;
what every later stage reads.
"""
