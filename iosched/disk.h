/*
 * iosched/disk.h - a rotational disk model for the block server: given the
 * drive's state (head cylinder, what its read-ahead cache holds, whether it
 * is still prefetching) and one request (sector, count, read/write, time the
 * command reaches the drive), compute when the request completes and the
 * drive's new state. Pure computation: no clock, no allocation, no I/O.
 *
 * What is modelled (docs/iosched.md has the derivations and sources):
 *   - seek time: Ruemmler & Wilkes' two-piece curve, a + b*sqrt(d) for short
 *     seeks and c + e*d for long ones (d = cylinders / full stroke), fitted
 *     at ios_disk_init() so that one cylinder costs seek_track_ms, a full
 *     stroke seek_full_ms and the mean over uniformly random start and end
 *     cylinders is seek_avg_ms (the datasheets' "average seek"), with the
 *     two pieces meeting with equal slope;
 *   - zoned recording: sectors per track fall linearly from the outer to the
 *     inner cylinder so that the media rate goes from media_outer_mb_s to
 *     media_inner_mb_s; the sustained rates of datasheets already include
 *     head and cylinder switches, so a transfer simply runs at the rate of
 *     the zone it starts in;
 *   - rotational position: the platter turns at a constant rate from time 0;
 *     sector s of a cylinder sits at angle frac(s / sectors_per_track), so
 *     after a seek the drive waits for the first sector to come round;
 *   - command overhead: overhead_miss_ms for a command that needs the media,
 *     overhead_hit_ms for one served from the cache;
 *   - interface: data leaves the cache at bus_mb_s, overlapped with the
 *     media transfer;
 *   - read-ahead cache: cache_bytes split into cache_segments segments.
 *     After a read from the media the drive keeps reading ahead into the
 *     segment until the next command arrives or it is one segment ahead of
 *     what the host has asked for (the segment is used as a ring). A read
 *     that the prefetch stream has reached, or is about to reach, is served
 *     from the stream; one held in another segment is a cache hit; one
 *     neither covers is a miss: the prefetch stops and the head moves.
 *     Writes go to the media (write cache off) and drop overlapping cache.
 * The "none" model (IOS_DISK_NONE) completes every request at once: for
 * real devices, whose own timing is what it is.
 *
 * Units: time in ns (uint64_t), positions in 512-byte sectors, MB = 10^6
 * bytes.
 */
#ifndef IOSCHED_DISK_H
#define IOSCHED_DISK_H

#include <stdint.h>

#define IOS_SECTOR_BYTES 512u
#define IOS_DISK_MAX_SEGMENTS 64u

enum ios_disk_kind {
	IOS_DISK_ROTATIONAL = 1, /* the model below */
	IOS_DISK_NONE = 2,       /* no modelled delay (real devices) */
};

/* Drive parameters. ios_disk_params_default() fills in a circa-2005
 * 7200 RPM ATA disk; each default's source is beside it in disk.c. */
struct ios_disk_params {
	enum ios_disk_kind kind;    /* rotational or none */
	uint64_t capacity_sectors;  /* size of the drive */
	unsigned heads;             /* recording surfaces (tracks/cylinder) */
	double rpm;                 /* spindle speed */
	double seek_track_ms;       /* one-cylinder seek, incl. settling */
	double seek_avg_ms;         /* mean over random start/end cylinders */
	double seek_full_ms;        /* full-stroke seek */
	double media_outer_mb_s;    /* sustained media rate, outer zone */
	double media_inner_mb_s;    /* sustained media rate, inner zone */
	double overhead_miss_ms;    /* command overhead, media access */
	double overhead_hit_ms;     /* command overhead, cache hit */
	double bus_mb_s;            /* buffer-to-host rate */
	uint64_t cache_bytes;       /* read-ahead buffer */
	unsigned cache_segments;    /* segments it is split into (1..64) */
	int readahead;              /* 1: prefetch after reads; 0: never */
};

/* Fills p with the defaults (see disk.c for each value's source). */
void ios_disk_params_default(struct ios_disk_params *p);

/* A drive model: the parameters and what ios_disk_init() derives from
 * them. Plain data; the caller owns it (no _free needed). */
struct ios_disk {
	struct ios_disk_params p;  /* as given */
	uint32_t cylinders;        /* derived from capacity and zones */
	double rot_ns;             /* one revolution */
	double spt_outer;          /* sectors per track, cylinder 0 */
	double spt_inner;          /* sectors per track, last cylinder */
	double seek_a, seek_b;     /* short seeks: a + b*sqrt(x) (ms) */
	double seek_c, seek_e;     /* long seeks: c + e*x (ms) */
	double seek_x0;            /* boundary, fraction of full stroke */
	uint64_t seg_sectors;      /* one cache segment */
};

/* Derives the model from p. Returns 0, or -EINVAL if a parameter is out of
 * range or the three seek figures admit no two-piece curve (for instance
 * an average outside what a curve between the track and full-stroke times
 * can give). */
int ios_disk_init(struct ios_disk *d, const struct ios_disk_params *p);

/* One cache segment. */
struct ios_disk_seg {
	uint64_t start;    /* first sector held */
	uint64_t end;      /* one past the last sector held */
	uint64_t lru;      /* last use (larger is more recent) */
	int valid;         /* holds something */
};

/* Counters kept in the state. */
struct ios_disk_stats {
	uint64_t reads;         /* read commands */
	uint64_t writes;        /* write commands */
	uint64_t cache_hits;    /* reads wholly in a segment */
	uint64_t stream_hits;   /* reads served by the running prefetch */
	uint64_t misses;        /* reads that needed the head to move */
	uint64_t seeks;         /* media accesses that changed cylinder */
	uint64_t seek_ns;       /* total seek time */
	uint64_t rot_ns;        /* total rotational wait */
	uint64_t sectors;       /* sectors transferred */
};

/* The drive's state. Zero it (or call ios_disk_state_init) before use. */
struct ios_disk_state {
	uint32_t cyl;             /* head position */
	int streaming;            /* prefetch running into seg[active] */
	unsigned active;          /* segment the prefetch fills */
	uint64_t stream_pos;      /* next sector the prefetch reads... */
	double stream_t;          /* ...at this time (ns) */
	uint64_t stream_limit;    /* prefetch stops before this sector */
	uint64_t busy_until;      /* end of the last request (ns) */
	uint64_t lru_clock;       /* for segment replacement */
	struct ios_disk_seg seg[IOS_DISK_MAX_SEGMENTS]; /* the cache */
	struct ios_disk_stats st; /* counters */
};

void ios_disk_state_init(struct ios_disk_state *s);

/* One request. */
struct ios_disk_io {
	uint64_t sector;  /* first sector */
	uint32_t count;   /* sectors, >= 1 */
	int write;        /* 0 read, 1 write */
};

/* How a request was served. */
enum ios_disk_how {
	IOS_DISK_HIT = 1,    /* from a cache segment */
	IOS_DISK_STREAM = 2, /* from the running prefetch */
	IOS_DISK_MEDIA = 3,  /* the head had to be positioned */
	IOS_DISK_NOWAIT = 4, /* the "none" model */
};

/* What ios_disk_access() computed. */
struct ios_disk_result {
	uint64_t start_ns;    /* when the drive started on it */
	uint64_t done_ns;     /* when the last byte reached the host */
	uint64_t seek_ns;     /* seek part */
	uint64_t rot_ns;      /* rotational wait part */
	uint32_t seek_cyls;   /* cylinders moved */
	enum ios_disk_how how; /* see above */
};

/* Serves io, whose command reaches the drive at now_ns (if the drive is
 * still busy with an earlier request it starts when that ends), updating s.
 * Returns 0, or -EINVAL if io is empty or runs past the end of the disk
 * (s is then unchanged). */
int ios_disk_access(const struct ios_disk *d, struct ios_disk_state *s,
		    const struct ios_disk_io *io, uint64_t now_ns,
		    struct ios_disk_result *res);

/* Seek time in ns for a move of dist cylinders (0 for 0). */
double ios_disk_seek_ns(const struct ios_disk *d, uint32_t dist);
/* Cylinder holding sector lba. */
uint32_t ios_disk_cyl(const struct ios_disk *d, uint64_t lba);
/* Media rate (bytes/s) of the zone holding lba. */
double ios_disk_media_rate(const struct ios_disk *d, uint64_t lba);
/* Mean of the fitted seek curve over uniformly random start and end
 * cylinders, in ms (should equal p.seek_avg_ms). */
double ios_disk_mean_seek_ms(const struct ios_disk *d);

#endif
