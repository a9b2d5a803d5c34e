"""Each producing service's published language: its event models, one module per producer.

Producers and consumers both import from here; nothing here imports a service.
"""
