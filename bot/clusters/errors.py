"""What can go wrong talking to a cluster, as our own exception types (always chained)."""

from __future__ import annotations


class ClusterError(Exception):
    """Base of every cluster failure; the message is safe to show to users."""


class ClusterConfigError(ClusterError):
    """The server settings or the kubeconfig for a cluster cannot be used."""


class ClusterUnreachable(ClusterError):
    """No answer from the API server: network, TLS, timeout, or it is unavailable."""


class Unauthorized(ClusterError):
    """The API server does not accept the bot's credentials (HTTP 401)."""


class Forbidden(ClusterError):
    """The bot's identity may not do this (HTTP 403, RBAC)."""


class NotFound(ClusterError):
    """The object, or its namespace, does not exist (HTTP 404)."""


class Conflict(ClusterError):
    """Another field manager owns fields the bot would set, or the object changed meanwhile."""

    def __init__(self, message: str, owners: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.owners = owners  # e.g. 'manager "kubectl-edit": .data.level'


class AdmissionFailed(ClusterError):
    """Admission control refused the request, or a webhook could not be called."""

    def __init__(self, message: str, *, unavailable: bool = False, no_dry_run: bool = False):
        super().__init__(message)
        self.unavailable = unavailable  # the webhook could not be reached
        self.no_dry_run = no_dry_run  # the webhook has side effects and refuses dry runs


class Invalid(ClusterError):
    """The API server rejects the object itself (HTTP 400 or 422)."""


class ServerError(ClusterError):
    """The API server failed while handling the request (HTTP 5xx)."""


class UnknownKind(ClusterError):
    """The cluster serves no resource for the object's apiVersion and kind."""
