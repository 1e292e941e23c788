"""Holding messages on SQS: the 12-hour cap counts from the receive, retention from the send."""

from oms_webhooks.delivery.retry.scheduling import (
    RETENTION_MARGIN_SECONDS,
    SQS_MAX_DELAY_SECONDS,
    VISIBILITY_MARGIN_SECONDS,
    Hold,
    plan_hold,
)

NOW = 1_800_000_000.0
DAY = 86_400


def test_short_countdown_is_one_visibility_change() -> None:
    assert plan_hold(30, now=NOW, received_at=NOW, sent_at=NOW) == Hold(visibility=30)


def test_countdown_over_12_hours_is_cut_to_what_is_left_of_the_cap() -> None:
    # GIVEN a message received 10 minutes ago and a 2-day countdown
    hold = plan_hold(2 * DAY, now=NOW, received_at=NOW - 600, sent_at=NOW - 600)
    # THEN the hop ends before AWS's 12 h cap from the receive, with a margin
    assert hold.visibility == 43_200 - 600 - VISIBILITY_MARGIN_SECONDS
    assert hold.resend_delay is None


def test_time_already_spent_since_the_receive_counts() -> None:
    hold = plan_hold(50_000, now=NOW, received_at=NOW - 43_000, sent_at=NOW - 43_000)
    assert hold.visibility == 43_200 - 43_000 - VISIBILITY_MARGIN_SECONDS
    spent = plan_hold(50_000, now=NOW, received_at=NOW - 43_150, sent_at=NOW - 43_150)
    assert spent.visibility == 0


def test_message_about_to_expire_is_resent_instead() -> None:
    # GIVEN a message sent almost 14 days ago
    sent = NOW - 14 * DAY + RETENTION_MARGIN_SECONDS + 60
    hold = plan_hold(3_600, now=NOW, received_at=NOW, sent_at=sent)
    # THEN it is re-sent (SQS DelaySeconds is at most 15 minutes)
    assert hold == Hold(resend_delay=SQS_MAX_DELAY_SECONDS)


def test_short_countdown_near_expiry_resends_with_its_own_delay() -> None:
    sent = NOW - 14 * DAY + RETENTION_MARGIN_SECONDS
    assert plan_hold(5, now=NOW, received_at=NOW, sent_at=sent) == Hold(resend_delay=5)


def test_negative_delay_is_zero() -> None:
    assert plan_hold(-3, now=NOW, received_at=NOW, sent_at=NOW) == Hold(visibility=0)


def test_a_message_received_900_times_is_re_sent_fresh() -> None:
    # DESIGN §9: every hold is a receive; maxReceiveCount is 1,000.
    now = 1_000_000.0
    kept = plan_hold(30, now=now, received_at=now, sent_at=now - 60, receive_count=899)
    fresh = plan_hold(30, now=now, received_at=now, sent_at=now - 60, receive_count=900)
    far = plan_hold(7_200, now=now, received_at=now, sent_at=now - 60, receive_count=950)
    assert kept.visibility == 30 and kept.resend_delay is None
    assert fresh.resend_delay == 30 and fresh.visibility is None
    assert far.resend_delay == 900
