from tests.carrier.fixtures import receiver, start_carrier

__all__ = ["receiver", "start_carrier"]
