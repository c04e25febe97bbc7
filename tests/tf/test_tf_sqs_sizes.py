"""tf/sqs.tf's message sizes are common/messages.py's: every trigger SQS accepts fits in its background message."""

from __future__ import annotations

from common.messages import MAX_TRIGGER_BYTES, QUEUE_MAX_MESSAGE_BYTES

#: What the locked AWS provider (5.100.0) accepts for max_message_size (its IntBetween validation; checked
#: with terraform validate against the provider binary: 1048576 is refused).
PROVIDER_MAX_MESSAGE_SIZE = 262_144


def test_sizes_are_the_python_constants_and_within_the_providers_range(tf_config) -> None:
    """The trigger queue is the envelope's reserve smaller than the background queue, both within 5.100.0's range."""
    sizes = (tf_config.locals["trigger_max_message_size"], tf_config.locals["queue_max_message_size"])

    assert (MAX_TRIGGER_BYTES, QUEUE_MAX_MESSAGE_BYTES) == sizes
    assert all(1024 <= size <= PROVIDER_MAX_MESSAGE_SIZE for size in sizes)


def test_each_queue_takes_its_size(tf_config) -> None:
    """The trigger queue gets the smaller limit; the background queue and both DLQs the full one."""
    (queues,) = tf_config.locals["queues"]

    assert "${local.trigger_max_message_size}" == queues["trigger"][0]["max_message_size"]
    assert "${local.queue_max_message_size}" == queues["background"][0]["max_message_size"]
    assert "${each.value.max_message_size}" == tf_config.resource("aws_sqs_queue", "source")["max_message_size"]
    assert "${local.queue_max_message_size}" == tf_config.resource("aws_sqs_queue", "dlq")["max_message_size"]
