"""TokenPath: the token sequence of a hypothesis, as a persistent linked list shared between hypotheses."""

from __future__ import annotations


class TokenPath:
    """A token sequence with the frame of each token, as a persistent linked list.

    Each path is its last token plus the path before it, so extending a hypothesis
    is O(1) and shares the whole prefix: neither a long stream's history nor beam
    search's hypotheses are ever copied per token (issue 14: copying the sequence on
    every emission made a long stream's CPU time grow with its length). Immutable;
    `EMPTY_PATH` (length 0) is the root of every path.
    """

    __slots__ = ("token", "frame", "previous", "length", "log_prob")

    def __init__(self, token: int, frame: int, previous: TokenPath | None, log_prob: float = 0.0) -> None:
        self.token = token  # the last token's id (-1 for the empty path)
        self.frame = frame  # the encoder frame that emitted it (-1 for the empty path)
        self.previous = previous  # the path without its last token; None for the empty path
        self.length = 0 if previous is None else previous.length + 1
        # The joiner's log-softmax of the token where it was emitted (blank penalty applied, as
        # sherpa-onnx's ys_probs): the confidence the result reports. Greedy search sets it right
        # after creating the node, once its batch of rows is normalised, before anyone reads it.
        self.log_prob = log_prob

    def extend(self, token: int, frame: int, log_prob: float = 0.0) -> TokenPath:
        """This path plus `token` emitted at `frame` with log-probability `log_prob`."""
        return TokenPath(token, frame, self, log_prob)

    def context(self, size: int, pad: int) -> tuple[int, ...]:
        """The last `size` tokens, left-padded with `pad` (the stateless predictor's input)."""
        context = [pad] * size
        node = self
        for i in range(size - 1, -1, -1):
            if node.previous is None:
                break
            context[i] = node.token
            node = node.previous
        return tuple(context)

    def nodes(self) -> list[TokenPath]:
        """The non-empty prefixes of this path, shortest first (O(length): for a whole result)."""
        nodes = []
        node = self
        while node.previous is not None:
            nodes.append(node)
            node = node.previous
        nodes.reverse()
        return nodes

    def tokens(self) -> tuple[int, ...]:
        return tuple(node.token for node in self.nodes())

    def timestamps(self) -> tuple[int, ...]:
        return tuple(node.frame for node in self.nodes())

    def same_tokens(self, other: TokenPath) -> bool:
        """Whether both paths hold the same tokens (frames aside); stops at their shared prefix."""
        a, b = self, other
        while a is not b:
            if a.length != b.length or a.token != b.token:
                return False
            a, b = a.previous, b.previous  # type: ignore[assignment]  # equal lengths: both None together
        return True


EMPTY_PATH = TokenPath(-1, -1, None)
