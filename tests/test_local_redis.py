"""The private Redis server used by the local mode and by the tests."""

import pytest
import redis

from dranspose.io.local_redis import PrivateRedis, RedisServerError


def test_private_redis_serves_and_stops():
    with PrivateRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.set("dranspose:probe", b"42")
        assert client.get("dranspose:probe") == b"42"
        client.close()
        port = server.port
    with (
        pytest.raises(redis.ConnectionError),
        redis.Redis(port=port, socket_connect_timeout=0.5) as gone,
    ):
        gone.ping()


def test_two_private_servers_are_independent():
    with PrivateRedis() as a, PrivateRedis() as b:
        assert a.port != b.port
        with redis.Redis.from_url(a.url) as client_a, redis.Redis.from_url(b.url) as client_b:
            client_a.set("k", b"a")
            assert client_b.get("k") is None


def test_busy_port_is_a_clear_error():
    with PrivateRedis() as first:
        with pytest.raises(RedisServerError, match=str(first.port)):
            PrivateRedis(port=first.port).start()
