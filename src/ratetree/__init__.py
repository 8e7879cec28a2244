"""ratetree: the scheduling core for LLM routers.

Groups form a tree whose leaves are deployments with token-bucket limits; a deployment
reachable along several paths has one state. A :class:`Scheduler` walks the tree, honors
``order`` tiers and remaining capacity, and hands out a :class:`Lease` that settles the
real token count or reports a failure.
"""

from ratetree.buildinfo import COMPILED
from ratetree.config.litellm import load_litellm as load_litellm
from ratetree.core.explain import BucketSnapshot as BucketSnapshot
from ratetree.core.explain import Explanation as Explanation
from ratetree.core.explain import GateSnapshot as GateSnapshot
from ratetree.core.explain import Snapshot as Snapshot
from ratetree.core.explain import WaiterSnapshot as WaiterSnapshot
from ratetree.core.leases import Lease as Lease
from ratetree.core.specs import Deployment as Deployment
from ratetree.core.specs import Group as Group
from ratetree.core.specs import Limits as Limits
from ratetree.core.specs import Member as Member
from ratetree.core.specs import Rate as Rate
from ratetree.core.specs import TreeSpec as TreeSpec
from ratetree.errors import ConfigError as ConfigError
from ratetree.errors import InvalidRequest as InvalidRequest
from ratetree.errors import NoCapacity as NoCapacity
from ratetree.errors import RatetreeError as RatetreeError
from ratetree.errors import SpecTypeError as SpecTypeError
from ratetree.errors import StateUnavailable as StateUnavailable
from ratetree.errors import UnknownGroup as UnknownGroup
from ratetree.scheduler import Scheduler as Scheduler
from ratetree.state.redis import RedisState as RedisState
from ratetree.state.redis import RedisStats as RedisStats
from ratetree.state.redis_async import AsyncRedisState as AsyncRedisState

__all__ = [
    "AsyncRedisState",
    "BucketSnapshot",
    "ConfigError",
    "Deployment",
    "Explanation",
    "GateSnapshot",
    "Group",
    "InvalidRequest",
    "Lease",
    "Limits",
    "Member",
    "NoCapacity",
    "Rate",
    "RatetreeError",
    "RedisState",
    "RedisStats",
    "Scheduler",
    "Snapshot",
    "SpecTypeError",
    "StateUnavailable",
    "TreeSpec",
    "UnknownGroup",
    "WaiterSnapshot",
    "compiled",
    "load_litellm",
]

__version__ = "0.1.0"

#: True when the hot path runs compiled by mypyc (a wheel built where a C compiler was
#: available), False for the pure-Python build (editable installs, RATETREE_COMPILE=0).
compiled: bool = COMPILED
