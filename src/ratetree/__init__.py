"""ratetree: the scheduling core for LLM routers.

Groups form a tree whose leaves are deployments with token-bucket limits; a deployment
reachable along several paths has one state. A :class:`Scheduler` walks the tree, honors
``order`` tiers and remaining capacity, and hands out a :class:`Lease` that settles the
real token count or reports a failure.
"""

from ._errors import ConfigError as ConfigError
from ._errors import NoCapacity as NoCapacity
from ._errors import RatetreeError as RatetreeError
from ._errors import StateUnavailable as StateUnavailable
from ._errors import UnknownGroup as UnknownGroup
from ._explain import BucketSnapshot as BucketSnapshot
from ._explain import Explanation as Explanation
from ._explain import GateSnapshot as GateSnapshot
from ._explain import Snapshot as Snapshot
from ._leases import Lease as Lease
from ._litellm_config import load_litellm as load_litellm
from ._redis_state import RedisState as RedisState
from ._redis_state import RedisStats as RedisStats
from ._scheduler import Scheduler as Scheduler
from ._specs import Deployment as Deployment
from ._specs import Group as Group
from ._specs import Limits as Limits
from ._specs import Member as Member
from ._specs import Rate as Rate
from ._specs import TreeSpec as TreeSpec

__all__ = [
    "BucketSnapshot",
    "ConfigError",
    "Deployment",
    "Explanation",
    "GateSnapshot",
    "Group",
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
    "StateUnavailable",
    "TreeSpec",
    "UnknownGroup",
    "load_litellm",
]

__version__ = "0.1.0"
