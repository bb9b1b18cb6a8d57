"""A scalar autograd engine: backpropagation by hand, in the style of Karpathy's micrograd.

Every ``Value`` remembers the Values it was computed from and how to pass a gradient back to them (the local
derivative times the upstream gradient: the chain rule). ``backward()`` visits the graph in reverse topological
order. The slides' example: f = (x + y) z at x = -2, y = 5, z = -4 gives df/dx = df/dy = z = -4, df/dz = x + y = 3.
"""

from __future__ import annotations

import math
import random


class Value:
    """A scalar with a gradient. Supports +, -, *, /, ** (number exponent), max, tanh, relu, sigmoid, exp, log.

    The three gate patterns of backpropagation: ``+`` distributes the upstream gradient (both inputs get it
    unchanged), ``*`` swaps (each input gets the upstream gradient times the other input), ``max`` routes (the
    larger input gets all of it, the smaller none; a tie splits it in halves, as ``torch.maximum`` does)."""

    def __init__(self, data: float, _children: tuple[Value, ...] = (), _op: str = "", label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None  # pushes self.grad into the children's .grad
        self._prev = _children
        self._op = _op
        self.label = label

    # -- arithmetic -----------------------------------------------------------------------------------------
    def __add__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():  # d(a+b)/da = d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> Value:
        if not isinstance(exponent, (int, float)):
            raise TypeError("Value ** supports int/float exponents only")
        out = Value(self.data**exponent, (self,), f"**{exponent}")

        def _backward():  # d(a^k)/da = k a^(k-1)
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def max(self, other) -> Value:
        """max(self, other): the router gate. d max(a, b)/da = 1 if a > b, 0 if a < b, 1/2 at a tie (as torch)."""
        other = other if isinstance(other, Value) else Value(other)
        out = Value(max(self.data, other.data), (self, other), "max")

        def _backward():
            share = 1.0 if self.data > other.data else 0.0 if self.data < other.data else 0.5
            self.grad += share * out.grad
            other.grad += (1.0 - share) * out.grad

        out._backward = _backward
        return out

    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other) -> Value:
        return self + (-other)

    def __truediv__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return self * other**-1

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other) -> Value:
        return Value(other) - self

    def __rtruediv__(self, other) -> Value:
        return Value(other) / self

    # -- nonlinearities -------------------------------------------------------------------------------------
    def _unary(self, value: float, local_grad: float, op: str) -> Value:
        out = Value(value, (self,), op)

        def _backward():
            self.grad += local_grad * out.grad

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return self._unary(t, 1 - t * t, "tanh")

    def relu(self) -> Value:
        return self._unary(max(self.data, 0.0), float(self.data > 0), "relu")

    def sigmoid(self) -> Value:
        s = 1 / (1 + math.exp(-self.data)) if self.data >= 0 else math.exp(self.data) / (1 + math.exp(self.data))
        return self._unary(s, s * (1 - s), "sigmoid")

    def exp(self) -> Value:
        e = math.exp(self.data)
        return self._unary(e, e, "exp")

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log of a non-positive value {self.data}")
        return self._unary(math.log(self.data), 1 / self.data, "log")

    # -- backpropagation ------------------------------------------------------------------------------------
    def backward(self) -> None:
        """Set d self / d v for every Value v this one depends on (``self.grad`` starts at 1)."""
        order, seen = [], set()
        stack = [(self, False)]
        while stack:  # iterative topological sort: deep graphs do not hit the recursion limit
            node, done = stack.pop()
            if done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{', ' + self.label if self.label else ''})"


class Neuron:
    def __init__(self, n_in: int, activation: str = "tanh", rng: random.Random | None = None):
        rng = rng or random.Random()
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(n_in)]
        self.b = Value(0.0)
        self.activation = activation

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return getattr(act, self.activation)() if self.activation != "linear" else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]


class ValueMLP:
    """An MLP built from Values: ``ValueMLP(2, [4, 1])`` is 2 inputs, 4 tanh hidden units, 1 output."""

    def __init__(self, n_in: int, sizes: list[int], activation: str = "tanh", out_activation: str = "linear",
                 seed: int = 0):
        rng = random.Random(seed)
        dims = [n_in] + list(sizes)
        self.layers = [
            [Neuron(dims[i], activation if i < len(sizes) - 1 else out_activation, rng) for _ in range(dims[i + 1])]
            for i in range(len(sizes))
        ]

    def __call__(self, x):
        for layer in self.layers:
            x = [neuron(x) for neuron in layer]
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for neuron in layer for p in neuron.parameters()]


def train_value_mlp(model: ValueMLP, xs, ys, steps: int = 200, lr: float = 0.1) -> list[float]:
    """Full-batch gradient descent on the mean squared error (targets -1/+1); returns the loss per step."""
    losses = []
    for _ in range(steps):
        preds = [model(x) for x in xs]
        loss = sum(((p - y) ** 2 for p, y in zip(preds, ys)), Value(0.0)) / len(xs)
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.data)
    return losses
