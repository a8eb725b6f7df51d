"""A session's settings in three groups, each validated once, when it is made.

- ``ConnectionOptions``: how a live session connects, logs in, registers and reconnects;
- ``DeliveryOptions``: how events reach receivers (every kind of session);
- ``HealthOptions``: when a silent subscription is stale, and what is done then.

Pass a group (``RealtimeSession(token, connection=ConnectionOptions(chunk_size=50))``), or its
fields as keyword arguments as before (``RealtimeSession(token, chunk_size=50)``); a keyword
changes that field of the group given, or of the defaults. An unknown keyword, or a value a
field refuses, raises ``TypeError``/``ValueError`` at once.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, TypeVar

import attrs

from ._core import DEFAULT_MAX_ITEMS
from ._delivery import OVERFLOW_POLICIES, BindableDispatcher
from ._health import stale_after_table
from .backoff import ReconnectPolicy
from .us import US_ITEM_FORMATS

__all__ = ["ConnectionOptions", "DeliveryOptions", "HealthOptions", "SessionOptions", "split_options"]


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _at_least(least: int) -> Callable[[Any, attrs.Attribute[Any], int], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if not isinstance(value, int) or value < least:
            raise ValueError(f"{attribute.name} must be an integer >= {least}, got {value!r}")
    return check


def _max_items(_: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"max_items must be >= 1 (or None for no limit), got {value!r}")


def _stale_after(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    stale_after_table(value)  # ValueError for a threshold that is not > 0


@attrs.frozen(kw_only=True)
class ConnectionOptions:
    """How a live session connects, logs in, registers and reconnects.

    ``chunk_size``: the most items per REG; ``max_items``: the most items the socket may hold
    (``None``: no limit; the account's types do not count); ``reconnect``: a ``ReconnectPolicy``;
    ``idle_timeout``: a connection that sent nothing (PINGs included) for that long is replaced;
    ``reconnect_on_kicked``: reconnect after SYSTEM R10001 instead of giving up;
    ``max_frame_bytes``: larger frames are refused (reported); ``ssl_context``: TLS settings
    (verification is on by default); ``allow_insecure``: plain ws:// to a host other than
    loopback; ``proxy``: an HTTP proxy URL, ``None`` (the environment decides) or ``False``;
    ``condition_rate``: condition search requests per second at most; ``us_item_format``: how
    REG sends US items (``"object"`` or ``"string"``); ``random_source``: the backoff's jitter.
    """

    chunk_size: int = attrs.field(default=100, validator=_at_least(1))
    max_items: int | None = attrs.field(default=DEFAULT_MAX_ITEMS, validator=_max_items)
    reconnect: ReconnectPolicy | None = None
    idle_timeout: float = attrs.field(default=60.0, validator=_positive)
    login_timeout: float = attrs.field(default=10.0, validator=_positive)
    ack_timeout: float = attrs.field(default=10.0, validator=_positive)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    reconnect_on_kicked: bool = False
    max_frame_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_at_least(1024))
    ssl_context: Any = None
    allow_insecure: bool = False
    proxy: str | bool | None = None
    condition_rate: float = attrs.field(default=5.0, validator=_positive)
    us_item_format: str = attrs.field(default="object", validator=attrs.validators.in_(US_ITEM_FORMATS))
    random_source: Callable[[], float] = random.random


@attrs.frozen(kw_only=True)
class DeliveryOptions:
    """How events reach receivers.

    ``inline``: receivers run on the reading thread with no handover (a live session only);
    ``handover_after``: how long a delivery may run before the standby thread takes over reading
    (a live session only); ``queue_size``: the events that may wait behind a slow receiver;
    ``overflow``: ``"block"`` pauses reading when they are that many, ``"drop_oldest"`` drops the
    oldest (counted, and signalled by ``on_overflow``); ``dispatcher``: deliver on another loop
    (``QtDispatcher``, ``TkDispatcher``, ``QueueDispatcher``) instead.
    """

    inline: bool = False
    handover_after: float = attrs.field(default=0.015, validator=_positive)
    queue_size: int = attrs.field(default=100_000, validator=_at_least(1))
    overflow: str = attrs.field(default="block", validator=attrs.validators.in_(OVERFLOW_POLICIES))
    dispatcher: BindableDispatcher | None = None

    def __attrs_post_init__(self) -> None:
        if self.inline and self.dispatcher is not None:
            raise ValueError("inline=True and a dispatcher exclude each other")


@attrs.frozen(kw_only=True)
class HealthOptions:
    """When a silent subscription is stale, and what is done then.

    ``stale_after``: one number for every type, or ``{type: seconds or None}`` over the
    catalogue's thresholds; ``resubscribe_stale``: REG a stale subscription again;
    ``health_interval``: how often the session judges by itself; ``market_clock``: the current
    time when judging market phases (a simulator's clock); ``watch_health=False``: no judging.
    """

    stale_after: float | Mapping[str, float | None] | None = attrs.field(default=None, validator=_stale_after)
    resubscribe_stale: bool = False
    health_interval: float = attrs.field(default=1.0, validator=_positive)
    market_clock: Callable[[], _dt.datetime] | None = None
    watch_health: bool = True


class SessionOptions(TypedDict, total=False):
    """Every field of the three groups, as keyword arguments (``**options``)."""

    chunk_size: int
    max_items: int | None
    reconnect: ReconnectPolicy | None
    idle_timeout: float
    login_timeout: float
    ack_timeout: float
    connect_timeout: float
    reconnect_on_kicked: bool
    max_frame_bytes: int
    ssl_context: Any
    allow_insecure: bool
    proxy: str | bool | None
    condition_rate: float
    us_item_format: str
    random_source: Callable[[], float]
    inline: bool
    handover_after: float
    queue_size: int
    overflow: str
    dispatcher: BindableDispatcher | None
    stale_after: float | Mapping[str, float | None] | None
    resubscribe_stale: bool
    health_interval: float
    market_clock: Callable[[], _dt.datetime] | None
    watch_health: bool


_GROUPS: tuple[type[Any], ...] = (ConnectionOptions, DeliveryOptions, HealthOptions)


def split_options(connection: ConnectionOptions | None, delivery: DeliveryOptions | None,
                  health: HealthOptions | None,
                  keywords: Mapping[str, Any]) -> tuple[ConnectionOptions, DeliveryOptions, HealthOptions]:
    """The three groups: those given (or the defaults), each with its fields among ``keywords``
    changed. TypeError for a keyword of no group."""
    known = set().union(*(attrs.fields_dict(group) for group in _GROUPS))
    unknown = sorted(set(keywords) - known)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    return (_changed(connection or ConnectionOptions(), keywords), _changed(delivery or DeliveryOptions(), keywords),
            _changed(health or HealthOptions(), keywords))


_T = TypeVar("_T", ConnectionOptions, DeliveryOptions, HealthOptions)


def _changed(group: _T, keywords: Mapping[str, Any]) -> _T:
    """``group`` with its fields among ``keywords`` changed (validated again)."""
    mine = {key: value for key, value in keywords.items() if key in attrs.fields_dict(type(group))}
    return attrs.evolve(group, **mine) if mine else group
