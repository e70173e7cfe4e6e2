/*
 * queue.h - a bounded, blocking FIFO of pointers for worker pools
 *
 * Memory in a pipeline is bounded by the capacity of its queues, never by
 * the size of the data.
 */
#ifndef PV_COMMON_QUEUE_H
#define PV_COMMON_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pv_queue
{
	pthread_mutex_t mu;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	void	  **items;
	size_t		cap;
	size_t		head;
	size_t		count;
	bool		closed;
} pv_queue;

extern void pv_queue_init(pv_queue *q, size_t capacity);
extern void pv_queue_destroy(pv_queue *q);
/* Blocks while full. Returns false (item not queued) once the queue is closed. */
extern bool pv_queue_push(pv_queue *q, void *item);
/* Blocks while empty; NULL once the queue is closed and drained. */
extern void *pv_queue_pop(pv_queue *q);
/* No more pushes; poppers drain what is left, then get NULL. */
extern void pv_queue_close(pv_queue *q);

#endif
