/*
 * queue.c - bounded blocking FIFO
 */
#include "config.h"

#include <stdlib.h>

#include "common/mem.h"
#include "common/queue.h"

void
pv_queue_init(pv_queue *q, size_t capacity)
{
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->cap = capacity ? capacity : 1;
	q->items = pv_calloc(q->cap, sizeof(void *));
	q->head = 0;
	q->count = 0;
	q->closed = false;
}

void
pv_queue_destroy(pv_queue *q)
{
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->items);
	q->items = NULL;
}

bool
pv_queue_push(pv_queue *q, void *item)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == q->cap && !q->closed)
		pthread_cond_wait(&q->not_full, &q->mu);
	if (q->closed)
	{
		pthread_mutex_unlock(&q->mu);
		return false;
	}
	q->items[(q->head + q->count) % q->cap] = item;
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
	return true;
}

void *
pv_queue_pop(pv_queue *q)
{
	void	   *item = NULL;

	pthread_mutex_lock(&q->mu);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->mu);
	if (q->count > 0)
	{
		item = q->items[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
		pthread_cond_signal(&q->not_full);
	}
	pthread_mutex_unlock(&q->mu);
	return item;
}

void
pv_queue_close(pv_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->mu);
}
