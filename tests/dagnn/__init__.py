"""Tests of the DagNN wrapper (matconvnet.dagnn): the network and its layer classes."""
