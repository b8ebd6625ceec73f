"""A model whose instances the cluster tests pass to tasks."""

from django.db import models


class Widget(models.Model):
    """Something a task can be given and can write to."""

    name = models.CharField(max_length=100)
    runs = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.name
