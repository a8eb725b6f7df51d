"""The session's decisions, sans-I/O: states, registrations, the request pipeline, timeouts.

Sans-I/O as h11 is (its events in, its decisions out; unlike h11's ``_state.py`` the states here
move in methods, not through a transition table): nothing here touches a socket, a thread or a
clock. The runtime (``session.py``) feeds in what happened, with the time passed as ``now``, and carries out
the actions returned (``kiwoom_rt._actions``; lifecycle notices are actions too):

- the application's requests: ``subscribe``, ``unsubscribe``, ``list_conditions``, ``search``,
  ``watch``, ``cancel_watch``; each request gets an id, and its handle (kept by the runtime) is
  finished by a later ``Completed`` or ``Failed`` action carrying that id;
- ``on_message(message, now)``: a decoded non-REAL message (LOGIN reply, ack, SYSTEM, PING, ...);
- ``on_hits(events)``: type-02 events, which keep condition watches current;
- ``on_connection_ended(outcome, now)``: the connection is over; reconnect or give up?
- ``check_timeouts(now)``: LOGIN, idle and ack deadlines; ``next_deadline()`` says when to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from . import protocol
from ._actions import (
    Abort,
    Action,
    Completed,
    Deliver,
    Echo,
    Failed,
    GiveUp,
    InvalidateToken,
    MembershipChange,
    Report,
    Retry,
    Send,
)
from ._conditions import ConditionCore
from ._notices import Connected, Disconnected, LoggedIn, Reconnecting, SystemMessage
from ._notices import GaveUp as GaveUpNotice
from ._registrations import Registrations, Request, RequestPipeline, build_requests
from ._state import SessionState
from .backoff import ReconnectPolicy
from .errors import (
    ConnectError,
    KiwoomError,
    LoginError,
    ProtocolError,
    SessionClosedError,
    SubscribeError,
    SymbolLimitError,
)
from .messages import Ack, ConditionReply, LoginReply, Message, Ping, SystemNotice, Unknown
from .us import MARKETS, US_ITEM_FORMATS

__all__ = ["DEFAULT_MAX_ITEMS", "Outcome", "SessionCore", "StandbyPace"]

#: Items per socket, by default (``max_items``): one connector documents 200 realtime items per
#: WebSocket; Kiwoom does not publish a number.
DEFAULT_MAX_ITEMS = 200

#: The longest the standby waits between looks while the GIL is contended (docs/design.md).
MAX_CONTENDED_POLL = 2.0
#: On-time looks in a row before the standby looks more often again: one on-time wake-up can be
#: luck (it came while the I/O thread waited in recv); a calm main thread gives them in a row.
CALM_LOOKS = 3
#: A look later than this (seconds) means the GIL was contended.
LATE_LOOK = 0.002


@attrs.frozen
class StandbyPace:
    """How often the standby looks at the I/O thread's deliveries while they flow.

    Each look takes the GIL once, and while the application's main thread computes, that can
    cost the I/O thread a switch interval. So a late look (the GIL was contended) doubles the
    period, up to ``MAX_CONTENDED_POLL`` (or 8 x ``floor`` if larger); once ``CALM_LOOKS``
    looks in a row came on time, each further on-time look halves it, down to ``floor``
    (``handover_after``).
    """

    period: float
    floor: float
    calm: int = 0

    def after_look(self, late: float) -> StandbyPace:
        """The pace after a look that woke ``late`` seconds after it was due."""
        if late > LATE_LOOK:
            return StandbyPace(min(self.period * 2, max(self.floor * 8, MAX_CONTENDED_POLL)), self.floor)
        calm = self.calm + 1
        period = max(self.floor, self.period / 2) if calm >= CALM_LOOKS else self.period
        return StandbyPace(period, self.floor, calm)


@attrs.define
class Outcome:
    """How a connection ended.

    ``kind``: "closed" (server close frame), "lost" (anything unexpected), "login_refused",
    "kicked" (R10001), "connect_failed" (never opened), "stopped" (the user closed the session).
    """

    kind: str
    code: int | str | None = None
    reason: str = ""
    error: BaseException | None = None
    auth_code: int | None = None  # for login_refused: the auth code worth a fresh-token retry


@attrs.define
class _Registering:
    """A subscribe or unsubscribe call: how many of its REG/REMOVE requests wait for an ack."""

    kind: str  # "REG" or "REMOVE"
    grp_no: str
    outstanding: int = 0


class SessionCore:
    """Registrations, requests, login and reconnect decisions of one session (not thread-safe:
    the runtime serialises calls with its lock)."""

    def __init__(self, *, chunk_size: int = 100, policy: ReconnectPolicy | None = None,
                 reconnect_on_kicked: bool = False, login_timeout: float = 10.0, idle_timeout: float = 60.0,
                 ack_timeout: float = 10.0, random: Callable[[], float] | None = None,
                 condition_rate: float = 5.0, market: str = "kr", us_item_format: str = "object",
                 max_items: int | None = DEFAULT_MAX_ITEMS) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if max_items is not None and max_items < 1:
            raise ValueError("max_items must be >= 1 (or None for no limit)")
        if market not in MARKETS:
            raise ValueError(f"market must be one of {MARKETS}, got {market!r}")
        if us_item_format not in US_ITEM_FORMATS:
            raise ValueError(f"us_item_format must be one of {US_ITEM_FORMATS}, got {us_item_format!r}")
        self.chunk_size = chunk_size
        self.max_items = max_items
        self.market = market
        self.us_item_format = us_item_format
        self.policy = policy or ReconnectPolicy()
        self.reconnect_on_kicked = reconnect_on_kicked
        self.login_timeout = login_timeout
        self.idle_timeout = idle_timeout
        self.ack_timeout = ack_timeout
        self._random = random or (lambda: 0.5)
        self.state = SessionState.NEW
        self.registrations = Registrations()
        self.pipeline = RequestPipeline()
        self._registering: dict[int, _Registering] = {}  # subscribe/unsubscribe calls not yet done
        self._next_request = 0
        self.conditions = ConditionCore(rate=condition_rate, market=market)
        self.ever_logged_in = False
        self._auth_retry_used = False
        self._attempt = 0
        # the current connection
        self.connection = 0  # its number; 0 before the first
        self._opened = False
        self._logged_in = False
        self._logged_in_at: float | None = None
        self._login_sent_at: float | None = None
        self._last_frame_at = 0.0
        self._outcome: Outcome | None = None
        # counters
        self.connections = 0
        self.logins = 0
        self.reconnects = 0
        self.pings_echoed = 0
        self.ack_timeouts = 0

    # --- the application's requests ---------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """False once closed or given up: new requests are refused."""
        return self.state not in (SessionState.CLOSED, SessionState.GAVE_UP)

    def start(self) -> None:
        if self.state is not SessionState.NEW:
            raise RuntimeError(f"session already {self.state}: start() runs once")
        self.state = SessionState.CONNECTING

    def _request_id(self) -> int:
        self._next_request += 1
        return self._next_request

    def subscribe(self, grp_no: str, items: Sequence[str], types: Sequence[str], refresh: bool,
                  now: float) -> tuple[int, list[Action]]:
        """Remember the registration and send REG now if logged in (else at the next login).
        Returns the request's id and the actions (``Completed`` once every REG was acked).

        Raises ``SymbolLimitError`` (and changes nothing) if the socket would then have more than
        ``max_items`` items."""
        if self.max_items is not None:
            after = self.registrations.counted_items_after(grp_no, items, types, refresh)
            if after > self.max_items:
                raise SymbolLimitError(self.registrations.counted_items(), after, self.max_items)
        request = self._request_id()
        self.registrations.add(grp_no, items, types, refresh)
        self._registering[request] = _Registering("REG", grp_no)
        requests = build_requests("REG", grp_no, items, types, refresh, self.chunk_size, request, market=self.market,
                                  us_item_format=self.us_item_format)
        return request, self._submit(request, requests, now)

    def unsubscribe(self, grp_no: str, items: Sequence[str], types: Sequence[str],
                    now: float) -> tuple[int, list[Action]]:
        """Forget the registration; send REMOVE if logged in (no server holds it otherwise)."""
        request = self._request_id()
        self.registrations.remove(grp_no, items, types)
        if not self.pipeline.open:
            return request, [Completed(request)]
        self._registering[request] = _Registering("REMOVE", grp_no)
        requests = build_requests("REMOVE", grp_no, items, types, True, self.chunk_size, request, market=self.market,
                                  us_item_format=self.us_item_format)
        return request, self._submit(request, requests, now)

    def _submit(self, request: int, requests: Sequence[Request], now: float) -> list[Action]:
        if not self.pipeline.open:
            return []  # attached to the restore of the next login
        self._registering[request].outstanding = len(requests)
        return self._send(self.pipeline.enqueue(requests, now))

    @staticmethod
    def _send(request: Request | None) -> list[Action]:
        return [Send(request.frame)] if request is not None else []

    def list_conditions(self, now: float) -> tuple[int, list[Action]]:
        """CNSRLST; ``Completed`` carries the list of ``Condition``s."""
        request = self._request_id()
        self.conditions.list_conditions(request)
        return request, self.condition_sends(now)

    def search(self, seq: str, now: float) -> tuple[int, list[Action]]:
        """A one-shot search of ``seq``; ``Completed`` carries its ``ConditionHit``s."""
        request = self._request_id()
        self.conditions.search(seq, request)
        return request, self.condition_sends(now)

    def watch(self, seq: str, now: float) -> tuple[bool, list[Action]]:
        """A realtime search of ``seq`` (False: watched already); ``WatchMembers`` follows."""
        new = self.conditions.watch(seq)
        return new, self.condition_sends(now)

    def cancel_watch(self, seq: str, now: float) -> list[Action]:
        self.conditions.cancel(seq)
        return self.condition_sends(now)

    def close(self) -> list[Action]:
        """The user closed the session: every unfinished request fails."""
        self.state = SessionState.CLOSED
        return self._abandon(SessionClosedError("the session was closed"))

    def _abandon(self, error: KiwoomError) -> list[Action]:
        self.pipeline.connection_lost()
        actions: list[Action] = [Failed(request, error) for request in self._registering]
        self._registering.clear()
        return actions + self._condition_outputs(self.conditions.close(error))

    # --- one connection ----------------------------------------------------------------------

    def connection_started(self) -> int:
        """A new attempt begins; returns its number (messages of older numbers are stale)."""
        self.connection += 1
        self._opened = self._logged_in = False
        self._logged_in_at = self._login_sent_at = None
        self._outcome = None
        return self.connection

    def connection_opened(self, now: float) -> list[Action]:
        """The WebSocket handshake succeeded; the runtime sends LOGIN next (``login_sent``)."""
        self._opened = True
        self._last_frame_at = now
        self.connections += 1
        return [Connected()]

    def login_sent(self, now: float) -> None:
        self._login_sent_at = now

    def frames_seen(self, now: float) -> None:
        """Bytes arrived (any frame, PINGs included): the connection is alive."""
        self._last_frame_at = now

    def set_outcome(self, outcome: Outcome) -> None:
        """Record why the current connection ends; the first reason wins."""
        if self._outcome is None:
            self._outcome = outcome

    @property
    def logged_in(self) -> bool:
        return self._logged_in

    @property
    def last_frame_at(self) -> float:
        """When the current connection last received anything (the ``now`` of ``frames_seen``)."""
        return self._last_frame_at

    # --- messages -----------------------------------------------------------------------------

    def on_message(self, message: Message, now: float) -> list[Action]:
        """Protocol work for one decoded non-REAL message of the current connection."""
        match message:
            case Ping():
                self.pings_echoed += 1
                return [Echo(protocol.echo_ping(message))]
            case LoginReply():
                return self._on_login_reply(message, now)
            case Ack():
                return self._on_ack(message, now)
            case SystemNotice():
                return self._on_system(message)
            case ConditionReply():
                return self._on_condition_reply(message, now)
            case Unknown(trnm=trnm, raw=raw):
                return [Report(ProtocolError(f"unknown message {trnm!r}", dict(raw)))]
            case _:  # a REAL batch is the intake's business
                return [Report(ProtocolError(f"unexpected message {type(message).__name__}"))]

    def _on_login_reply(self, reply: LoginReply, now: float) -> list[Action]:
        if not reply.ok:
            outcome = Outcome("login_refused", code=reply.return_code, reason=reply.return_msg,
                              auth_code=protocol.auth_failure_code(reply.return_code, reply.return_msg))
            self.set_outcome(outcome)
            return [Abort(outcome.reason)]
        if self._logged_in or self.state is SessionState.CLOSED:
            return []
        self._logged_in = True
        self._logged_in_at = now
        self.logins += 1
        self._auth_retry_used = False
        self.state = SessionState.CONNECTED
        self.ever_logged_in = True
        restore = self.registrations.restore_requests(self.chunk_size, market=self.market,
                                                      us_item_format=self.us_item_format)
        done: list[int] = []
        for request, registering in self._registering.items():  # every one waits for a login now
            group = restore.get(registering.grp_no, [])
            for frame in group:
                frame.asked_by.append(request)
            registering.outstanding = len(group)
            if not group:
                done.append(request)
        for request in done:
            del self._registering[request]
        first = self.pipeline.connection_ready([r for g in restore.values() for r in g], now)
        self.conditions.connection_ready()
        return [LoggedIn(dict(reply.extra)), *(Completed(request) for request in done), *self._send(first),
                *self.condition_sends(now)]

    # --- condition search ---------------------------------------------------------------------

    def condition_sends(self, now: float) -> list[Action]:
        """The condition requests due now (paced; nothing before the login)."""
        return [Send(frame) for frame in self.conditions.poll(now)]

    def _on_condition_reply(self, reply: ConditionReply, now: float) -> list[Action]:
        return self._condition_outputs(self.conditions.on_reply(reply)) + self.condition_sends(now)

    @staticmethod
    def _condition_outputs(outputs: Iterable[Any]) -> list[Action]:
        """Condition outputs as actions: resync changes are gathered into one ``Deliver``."""
        actions: list[Action] = []
        changes = []
        for output in outputs:
            if isinstance(output, MembershipChange):
                changes.append(output)
            else:
                actions.append(output)
        if changes:
            actions.append(Deliver(tuple(changes)))
        return actions

    def on_hits(self, events: Iterable[Any]) -> list[Action]:
        """Type-02 events, in arrival order: the watches they concern change their members."""
        actions: list[Action] = []
        for event in events:
            actions += self._condition_outputs(self.conditions.on_hit(event))
        return actions

    def _on_ack(self, ack: Ack, now: float) -> list[Action]:
        answered, following = self.pipeline.on_ack(ack, now)
        actions: list[Action] = []
        if answered is None:
            actions.append(Report(ProtocolError(f"{ack.trnm} ack with no request in flight", repr(ack))))
        else:
            if not ack.ok and answered.kind == "REG":
                # refused: stop wanting it, or every reconnect would ask again
                self.registrations.remove(answered.grp_no, answered.items, answered.types)
            elif ack.ok:
                self.registrations.acknowledged(answered)
            for request in answered.asked_by:
                registering = self._registering.get(request)
                if registering is None:  # failed already (one refusal fails the whole call)
                    continue
                registering.outstanding -= 1
                if not ack.ok:
                    del self._registering[request]
                    actions.append(Failed(request, SubscribeError(ack.return_code, ack.return_msg)))
                elif registering.outstanding <= 0:
                    del self._registering[request]
                    actions.append(Completed(request))
        return actions + self._send(following)

    def _on_system(self, notice: SystemNotice) -> list[Action]:
        actions: list[Action] = [SystemMessage(notice.code, notice.message)]
        if notice.code == "R10001":
            self.set_outcome(Outcome("kicked", code=notice.code, reason=notice.message))
        elif notice.code == "R10004":
            self.set_outcome(Outcome("login_refused", code=notice.code, reason=notice.message, auth_code=8005))
        elif notice.code == "R10002":
            self.set_outcome(Outcome("lost", code=notice.code, reason=notice.message))
        return actions

    # --- timeouts -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time at which ``check_timeouts`` could act (None: nothing to watch)."""
        if not self._opened or self._outcome is not None:
            return None
        deadlines = [self._last_frame_at + self.idle_timeout]
        if not self._logged_in and self._login_sent_at is not None:
            deadlines.append(self._login_sent_at + self.login_timeout)
        request = self.pipeline.in_flight
        if request is not None and request.sent_at is not None:
            deadlines.append(request.sent_at + self.ack_timeout)
        paced = self.conditions.next_send_at()
        if paced is not None:  # requests held back by the pacing
            deadlines.append(paced)
        return min(deadlines)

    def check_timeouts(self, now: float) -> list[Action]:
        """Abort a connection that never answered LOGIN, went silent, or left a request unacked."""
        if not self._opened or self._outcome is not None:
            return []
        sends = self.condition_sends(now)
        if (not self._logged_in and self._login_sent_at is not None
                and now - self._login_sent_at > self.login_timeout):
            outcome = Outcome("lost", reason=f"no LOGIN reply within {self.login_timeout} s",
                              error=ConnectError("no LOGIN reply"))
        elif now - self._last_frame_at > self.idle_timeout:
            outcome = Outcome("lost", reason=f"nothing received for {self.idle_timeout} s")
        else:
            overdue = self.pipeline.overdue(now, self.ack_timeout)
            if overdue is None:
                return sends
            # acks carry no request id: after a lost ack, pairing cannot be trusted
            self.ack_timeouts += 1
            outcome = Outcome("lost", reason=f"{overdue.kind} ack timeout")
            self.set_outcome(outcome)
            return [Report(ProtocolError(f"{overdue.kind} not acknowledged within {self.ack_timeout} s",
                                         overdue.frame)), Abort(outcome.reason)]
        self.set_outcome(outcome)
        return [Abort(outcome.reason)]

    # --- the end of a connection --------------------------------------------------------------

    def on_connection_ended(self, outcome: Outcome, now: float) -> list[Action]:
        """The current connection is over. ``outcome`` is what the transport saw; a reason
        recorded earlier (a refusal, SYSTEM, a timeout, the user's close) takes precedence."""
        if self.state is SessionState.CLOSED:
            outcome = Outcome("stopped", reason="closed by user")
        elif self._outcome is not None:
            outcome = self._outcome
        actions = self._condition_outputs(self.conditions.connection_lost())
        self.pipeline.connection_lost()
        self.registrations.confirmed.clear()  # the next connection confirms them again
        for request, registering in list(self._registering.items()):
            registering.outstanding = 0
            if registering.kind == "REMOVE":  # the next connection starts without that registration
                del self._registering[request]
                actions.append(Completed(request))
            # a REG is attached again to the restore of the next login
        if self._logged_in_at is not None and now - self._logged_in_at >= self.policy.healthy_after:
            self._attempt = 0
        retry, delay, error = self._decide(outcome, actions)
        if self._opened:
            actions.append(Disconnected(outcome.code, outcome.reason, retry))
        if outcome.kind == "stopped":
            return actions
        if not retry:
            return actions + self.give_up(error or ConnectError(outcome.reason))
        self._attempt += 1
        self.state = SessionState.RECONNECTING
        self.reconnects += 1
        return [*actions, Reconnecting(self._attempt, delay), Retry(delay)]

    def _decide(self, outcome: Outcome, actions: list[Action]) -> tuple[bool, float, KiwoomError | None]:
        """(retry?, delay, error if not)."""
        if outcome.kind == "stopped":
            return False, 0.0, None
        if outcome.kind == "login_refused":
            error = LoginError(outcome.code if isinstance(outcome.code, int) else None, outcome.reason)
            if outcome.auth_code is not None and not self._auth_retry_used:
                self._auth_retry_used = True  # once, with a fresh token; never a reconnect storm
                actions.append(InvalidateToken())
                return True, 0.0, None
            return False, 0.0, error
        if not self.ever_logged_in:
            # start(): the first connection must work; errors surface to the caller at once
            first = outcome.error if isinstance(outcome.error, KiwoomError) else ConnectError(outcome.reason)
            return False, 0.0, first
        if outcome.kind == "kicked" and not self.reconnect_on_kicked:
            return False, 0.0, ConnectError(f"R10001: the same app key connected elsewhere ({outcome.reason})")
        if self.policy.exhausted(self._attempt):
            return False, 0.0, ConnectError(f"gave up after {self._attempt} reconnect attempts: {outcome.reason}")
        return True, self.policy.delay(self._attempt, self._random), None

    def give_up(self, error: KiwoomError) -> list[Action]:
        """Stop for good (the last connection failed, or the runtime did): every unfinished
        request fails, and it is said."""
        if self.state is SessionState.CLOSED:
            return []
        self.state = SessionState.GAVE_UP
        return [GaveUpNotice(error), *self._abandon(SessionClosedError(f"the session gave up: {error}")),
                GiveUp(error)]
