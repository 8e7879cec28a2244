"""Adapters that wire a :class:`ratetree.Scheduler` into other routers' extension points.

Each integration lives in its own module and needs its router installed (an optional extra,
e.g. ``pip install 'ratetree[litellm]'``); importing this package needs nothing extra.
"""
