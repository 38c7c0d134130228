"""The knowledge base: drug lists, classes and (later) regimens and protocols, loaded from data/."""

from .base import DrugClass, KnowledgeBase, Membership, NameEntry
from .loader import load_knowledge_base

__all__ = ["DrugClass", "KnowledgeBase", "Membership", "NameEntry", "load_knowledge_base"]
