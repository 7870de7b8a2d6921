"""The mutants ``mutation/mutants.py`` runs: one realistic bug per documented guarantee.

Each mutant breaks one promise of ``docs/loader.md``, ``docs/ingest.md``,
``docs/format.md`` or ``docs/sampling.md`` (``guarantee`` quotes or names it) with a small
edit a tired contributor could make, and lists the tests that must then fail: node ids
where one test suffices, so each mutant runs in seconds to a minute.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """``old`` (occurring exactly once in ``path``) replaced by ``new``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    guarantee: str


_LOADER_FAIL = "tests/loader/test_loader_failures.py::"
_GUARD_FAIL = "tests/loader/test_guarantee_loader_failures.py::"
_LOADER_ITER = "tests/loader/test_loader_iter.py::"
_FAULTS = "tests/faults/test_loader_faults.py::"
_CORRUPT = "tests/faults/test_corrupt_data.py::"
_ROUND = "tests/ingest/test_ingest_roundtrip.py::"
_BAD = "tests/ingest/test_bad_input.py::"
_WRITER = "tests/ingest/test_writer.py::"
_ROI = "tests/augment/test_jpeg_roi.py::"
_MODES = "tests/sampling/test_sampler_modes.py::"
_QUOTAS = "tests/sampling/test_sampler_quotas.py::"
_ESCAPES = "tests/faults/test_escapes.py::"
_READERS = "tests/faults/test_shared_readers.py::"
_WRITERS = "tests/faults/test_shared_writers.py::"
_REFUSALS = "tests/faults/test_refusals.py::"

MUTANTS: tuple[Mutant, ...] = (
    # -- ingest (docs/ingest.md, docs/format.md "Atomicity") --------------------------------
    Mutant(
        name="ingest-publish-before-index",
        path="datumio/ingest/pipeline.py",
        old="""        manifest = write_dataset(tmp, target.index_dir, records, info)
        if events is not None:
            events("finalize")
        manifest = target.commit(tmp, manifest, events)
""",
        new="""        target.commit(tmp, None, events)  # publish first ...
        tmp = None
        manifest = write_dataset(out, target.index_dir, records, info)  # ... then the index
        if events is not None:
            events("finalize")
""",
        tests=("tests/ingest/test_atomic.py",),
        guarantee="ingest.md: OUT is either complete or absent (renamed when all is written)",
    ),
    Mutant(
        name="ingest-rejects-not-written",
        path="datumio/ingest/finalize.py",
        old="""            fh.write(json.dumps(reject.to_dict(), ensure_ascii=False) + "\\n")""",
        new="""            pass""",
        tests=(_BAD + "test_rejects_jsonl_lists_every_reject",),
        guarantee="ingest.md: a file that cannot be used is written to OUT/rejects.jsonl",
    ),
    Mutant(
        name="ingest-strict-ignored",
        path="datumio/tools/ingest_cmd.py",
        old="""on_error="raise" if args.strict else args.on_error,""",
        new="""on_error=args.on_error,""",
        tests=("tests/tools/test_cli.py::test_bad_input_policies_exit_3_and_write_nothing",),
        guarantee="ingest.md: --strict stops at the first bad file (exit 3), writes nothing",
    ),
    Mutant(
        name="ingest-max-errors-off-by-one",
        path="datumio/ingest/running.py",
        old="""if limit is not None and len(self.items) > limit:""",
        new="""if limit is not None and len(self.items) >= limit:""",
        tests=(_BAD + "test_max_errors",),
        guarantee="ingest.md: --max-errors N fails the run once MORE than N files are rejected",
    ),
    Mutant(
        name="ingest-symlink-escape-allowed",
        path="datumio/ingest/sources.py",
        old="""    if not _inside(real, root_real):
        return "symlink escapes the input root"
""",
        new="",
        tests=(
            "tests/ingest/test_path_safety.py::test_symlinks_inside_are_followed_and_unsafe_ones_rejected",
        ),
        guarantee="ingest.md: a symlink that leads outside SRC is rejected",
    ),
    Mutant(
        name="ingest-labels-dotdot-allowed",
        path="datumio/ingest/labels_file.py",
        old="""    if ".." in rel.replace("\\\\", "/").split("/"):""",
        new="""    if ".." in rel.replace("\\\\", "/").split("/")[:1]:""",
        tests=("tests/ingest/test_labels_file.py::test_bad_rows_are_rejected_with_their_line",),
        guarantee="ingest.md: a labels-file path that contains '..' is rejected",
    ),
    Mutant(
        name="ingest-hidden-files-taken",
        path="datumio/ingest/sources.py",
        old="""    return name.startswith(".")""",
        new="""    return name in (".", "..")""",
        tests=("tests/ingest/test_path_safety.py::test_files_directly_in_src_and_hidden_entries",),
        guarantee="ingest.md: names starting with '.' (files and folders) are ignored",
    ),
    Mutant(
        name="ingest-labels-sorted-as-text",
        path="datumio/ingest/labels_file.py",
        old="""        return sorted(values, key=lambda v: (int(v), v))""",
        new="""        return sorted(values)""",
        tests=("tests/ingest/test_labels_file.py::test_integer_labels_sort_numerically",),
        guarantee="ingest.md: integer labels sort numerically (2 before 10)",
    ),
    Mutant(
        name="ingest-shuffle-seed-ignored",
        path="datumio/ingest/pipeline.py",
        old="""    order = np.random.default_rng(options.seed).permutation(len(items))""",
        new="""    order = np.random.default_rng().permutation(len(items))""",
        tests=("tests/ingest/test_guarantee_ingest_options.py",),
        guarantee="ingest.md: --shuffle permutes with numpy.random.default_rng(seed): same input "
        "and options give the same records",
    ),
    Mutant(
        name="ingest-size-ignores-aspect",
        path="datumio/ingest/work.py",
        old=("ImageOps.fit(img, (out_width, out_height), method=_RESAMPLE, centering=(0.5, 0.5))"),
        new="img.resize((out_width, out_height), _RESAMPLE)",
        tests=("tests/ingest/test_guarantee_ingest_options.py",),
        guarantee="ingest.md: --size resizes to cover WxH, then centre-crops (aspect kept)",
    ),
    Mutant(
        name="ingest-max-side-enlarges",
        path="datumio/ingest/work.py",
        old="""        return spec.max_side / longest if longest > spec.max_side else None""",
        new="""        return spec.max_side / longest""",
        tests=("tests/ingest/test_guarantee_ingest_options.py",),
        guarantee="ingest.md: --max-side shrinks so no side exceeds N (never enlarges)",
    ),
    Mutant(
        name="ingest-short-side-uses-long-side",
        path="datumio/ingest/work.py",
        old="""        return spec.short_side / min(width, height)""",
        new="""        return spec.short_side / max(width, height)""",
        tests=(_ROUND + "test_resize_options",),
        guarantee="ingest.md: --short-side makes the shorter side exactly N",
    ),
    Mutant(
        name="ingest-gray16-clipped",
        path="datumio/codec.py",
        old="""    top = 65535 if arr.max(initial=0) <= 65535 else int(arr.max())""",
        new="""    top = 255""",
        tests=(_BAD + "test_gray16_is_scaled_not_clipped",),
        guarantee="ingest.md/format.md: 16-bit images are scaled to 8 bit, never clipped",
    ),
    Mutant(
        name="ingest-class-index-not-grouped",
        path="datumio/shards/writer.py",
        old="""        fmt.CLASS_IDS: class_ids,""",
        new="""        fmt.CLASS_IDS: np.arange(len(labels), dtype=fmt.ID_DTYPE),""",
        tests=(
            "tests/shards/test_guarantee_format.py::test_class_ids_group_the_records_of_each_class",
        ),
        guarantee="format.md: index/class_ids.npy holds the ids grouped by class, ascending",
    ),
    Mutant(
        name="ingest-overwrite-foreign-files",
        path="datumio/ingest/atomic.py",
        old="""    foreign = [name for name in entries if not _DATASET_ENTRY.match(name)]""",
        new="""    foreign: list[str] = []""",
        tests=(
            "tests/faults/test_ingest_faults.py::test_overwrite_refuses_what_datumio_did_not_write",
        ),
        guarantee="ingest.md: --overwrite never replaces a dataset holding files someone else "
        "put there",
    ),
    Mutant(
        name="ingest-out-inside-src",
        path="datumio/ingest/pipeline.py",
        old="""inside = out_real == src_real or out_real.startswith(src_real.rstrip(os.sep)""",
        new='inside = out_real == src_real or out_real.startswith(src_real + "\\0"',
        tests=(_ROUND + "test_output_inside_input_is_refused",),
        guarantee="ingest.md: OUT may not be inside SRC",
    ),
    Mutant(
        name="ingest-failed-run-leaves-temporary",
        path="datumio/ingest/atomic.py",
        old="""        discard(tmp)
        return error
    if not isinstance(error, Exception):""",
        new="""        return error
    if not isinstance(error, Exception):""",
        tests=(_BAD + "test_on_error_raise_names_the_file_and_leaves_no_output",),
        guarantee="ingest.md: a run that stops writes nothing at OUT (nor beside it)",
    ),
    # -- the format (docs/format.md) -------------------------------------------------------
    Mutant(
        name="format-name-not-checked",
        path="datumio/shards/manifest.py",
        old="""    if obj.get("format") != fmt.FORMAT_NAME:""",
        new="""    if obj.get("format") is None:""",
        tests=("tests/shards/test_manifest.py",),
        guarantee="format.md: a reader must refuse a format other than 'datumio'",
    ),
    Mutant(
        name="format-version-newer-accepted",
        path="datumio/shards/manifest.py",
        old="""    if version > fmt.FORMAT_VERSION:""",
        new="""    if version > fmt.FORMAT_VERSION + 1:""",
        tests=("tests/shards/test_guarantee_format.py::test_the_next_format_version_is_refused",),
        guarantee="format.md: a version newer than the newest known raises FormatVersionError",
    ),
    Mutant(
        name="format-version-not-int-accepted",
        path="datumio/shards/manifest.py",
        old="""    if not isinstance(version, int):""",
        new="""    if version is None:""",
        tests=("tests/shards/test_manifest.py",),
        guarantee="format.md: a format_version that is not an integer is refused",
    ),
    Mutant(
        name="format-path-escape-allowed",
        path="datumio/shards/manifest_sections.py",
        old="""if not posixpath.isabs(norm) and norm != ".." and not norm.startswith("../"):""",
        new="""if not posixpath.isabs(norm):""",
        tests=(_CORRUPT + "test_a_manifest_that_readers_cannot_trust_is_refused",),
        guarantee="format.md: shard and index paths that leave the dataset ('..') are refused",
    ),
    Mutant(
        name="format-crc-not-checked-on-read",
        path="datumio/shards/dataset.py",
        old="""zlib.crc32(payload) != int((meta or self._meta(shard)).crc32[local])""",
        new="""zlib.crc32(payload) == -1""",
        tests=(_ROUND + "test_bit_rot_is_caught_by_crc",),
        guarantee="format.md/loader.md: reading a record checks the payload's CRC32",
    ),
    Mutant(
        name="format-shard-record-list-not-checked",
        path="datumio/shards/base.py",
        old="""        or records_crc32(meta.crc32) != listed_crc32
""",
        new="",
        tests=(_CORRUPT + "test_a_swapped_shard_is_caught_by_its_record_list",),
        guarantee="loader.md: the first read of a shard checks its record list against the "
        "manifest's records_crc32",
    ),
    Mutant(
        name="format-label-range-not-checked",
        path="datumio/shards/index.py",
        old="""    check_range(labels, manifest.num_classes, where(fmt.LABELS), "label")""",
        new="""    check_range(labels, 1 << 31, where(fmt.LABELS), "label")""",
        tests=(_CORRUPT + "test_a_label_outside_the_class_range_is_refused_at_open",),
        guarantee="loader.md: every label in 0 .. num_classes-1, checked at open",
    ),
    Mutant(
        name="format-index-dtype-unchecked",
        path="datumio/shards/index.py",
        old="""    if arr.dtype.str != dtype or arr.shape != shape:""",
        new="""    if arr.shape != shape:""",
        tests=(_CORRUPT + "test_an_index_of_another_dtype_or_length_is_refused",),
        guarantee="format.md: index files of another dtype than listed are refused",
    ),
    Mutant(
        name="format-shard-label-not-compared",
        path="datumio/shards/dataset.py",
        old="""        if listed_label != label or listed_shape != shape:""",
        new="""        if listed_shape != shape:""",
        tests=(_CORRUPT + "test_a_label_changed_within_range_is_caught_when_the_record_is_read",),
        guarantee="format.md: reading a record checks that the shard's own label equals the "
        "index's",
    ),
    Mutant(
        name="format-unknown-fields-dropped",
        path="datumio/shards/manifest_sections.py",
        old="""    return {key: plain(v) for key, v in obj.items() if key not in known}""",
        new="""    return {}""",
        tests=("tests/shards/test_manifest.py::test_unknown_keys_of_a_newer_writer_are_kept",),
        guarantee="format.md: keys a reader does not know are kept (extra) through a round trip",
    ),
    Mutant(
        name="verify-decode-disabled",
        path="datumio/tools/verify_cmd.py",
        old="""        report = verify(path, decode=args.decode, progress=bar.update)""",
        new="""        report = verify(path, progress=bar.update)""",
        tests=(
            "tests/shards/test_verify.py::"
            "test_decode_finds_a_record_whose_bytes_are_sound_but_no_image",
        ),
        guarantee="README/inspect.md: datumio verify --decode also decodes every record",
    ),
    Mutant(
        name="verify-crc-not-recomputed",
        path="datumio/shards/verify.py",
        old="""        if zlib.crc32(payload) != int(crcs[local]):
            check.problem("CRC32 mismatch (bit rot)", shard=name, record=record, key=key)""",
        new="""        if len(payload) == 0:
            check.problem("CRC32 mismatch (bit rot)", shard=name, record=record, key=key)""",
        tests=("tests/shards/test_verify.py::test_flipped_bit_is_found_and_named",),
        guarantee="README: datumio verify recomputes every record's CRC32",
    ),
    # -- the loader (docs/loader.md) -------------------------------------------------------
    Mutant(
        name="loader-abandoned-epoch-keeps-slots",
        path="datumio/loader/loader.py",
        old="""self._inflight.pop(done.slot, None)
                    runtime.ring.give_back(done.slot)""",
        new="""self._inflight.pop(done.slot, None)""",
        tests=("tests/loader/test_abandoned_epoch.py",),
        guarantee="loader.md: break out of an epoch and start the next one (the slots of "
        "finished, unyielded batches go back)",
    ),
    Mutant(
        name="loader-strict-ignored",
        path="datumio/loader/loader.py",
        old="""            self.options.strict,\n""",
        new="""            False,\n""",
        tests=(_LOADER_FAIL + "test_strict_raises_with_record_and_shard",),
        guarantee="loader.md: strict=True raises WorkerError instead of replacing a record",
    ),
    Mutant(
        name="loader-replacement-other-class",
        path="datumio/loader/fill.py",
        old="""        members = self.dataset.class_index(int(self.dataset.labels[record]))""",
        new="""        members = np.arange(len(self.dataset), dtype=np.int64)""",
        tests=(_GUARD_FAIL + "test_the_last_record_of_a_class_is_replaced_by_the_first",),
        guarantee="loader.md: a failing record is replaced by the next record of the same class",
    ),
    Mutant(
        name="loader-replacement-tries-unbounded",
        path="datumio/loader/fill.py",
        old="""        if tries >= min(n - 1, MAX_REPLACEMENT_TRIES):""",
        new="""        if tries >= n - 1:""",
        tests=(
            "tests/loader/test_documented_failures.py::"
            "test_a_record_whose_16_next_records_fail_too_fails_its_batch",
        ),
        guarantee="loader.md: replaced up to 16 tries, then the batch fails",
    ),
    Mutant(
        name="loader-worker-error-swallowed",
        path="datumio/loader/worker.py",
        old="""        except (Exception, SystemExit, KeyboardInterrupt) as exc:""",
        new="""        except (Exception, SystemExit, KeyboardInterrupt):
            return""",
        tests=(_LOADER_FAIL + "test_worker_exception_reaches_the_caller",),
        guarantee="loader.md: an exception in a worker reaches the caller as WorkerError with "
        "its traceback",
    ),
    Mutant(
        name="loader-worker-error-loses-record",
        path="datumio/loader/worker.py",
        old="""        record, shard = exc.record, exc.shard""",
        new="""        record, shard = -1, exc.shard""",
        tests=(_LOADER_FAIL + "test_strict_raises_with_record_and_shard",),
        guarantee="loader.md: WorkerError names the record id and the shard path",
    ),
    Mutant(
        name="loader-dead-worker-not-replaced",
        path="datumio/loader/pool.py",
        old="""            if self._kills[key] > self._max_restarts:""",
        new="""            if self._kills[key] > 0:""",
        tests=(_LOADER_FAIL + "test_sigkilled_worker_is_replaced_and_its_batch_reissued",),
        guarantee="loader.md: a worker that dies is replaced and its batches re-issued",
    ),
    Mutant(
        name="loader-restart-limit-off-by-one",
        path="datumio/loader/pool.py",
        old="""            if self._kills[key] > self._max_restarts:""",
        new="""            if self._kills[key] > self._max_restarts + 1:""",
        tests=(
            _GUARD_FAIL + "test_a_batch_that_killed_max_restarts_plus_one_workers_raises_saying_so",
        ),
        guarantee="loader.md: a batch that has killed max_restarts + 1 workers raises LoaderError",
    ),
    Mutant(
        name="loader-start-failure-retried",
        path="datumio/loader/pool.py",
        old="""        if self._start_failed[k]:""",
        new="""        if False:""",
        tests=(
            "tests/loader/test_entry_points.py::test_a_worker_that_cannot_start_stops_the_loader_at_once",
        ),
        guarantee="loader.md: a worker that fails before it is ready stops the loader at once "
        "(no replacements)",
    ),
    Mutant(
        name="loader-parent-watch-removed",
        path="datumio/loader/worker.py",
        old="""        if os.getppid() != first_parent:
            return None  # reparented: the process that started us is gone""",
        new="",
        tests=("tests/loader/test_guarantee_parent_death.py",),
        guarantee="loader.md: workers watch for a change of parent and exit",
    ),
    Mutant(
        name="loader-death-signal-not-armed",
        path="datumio/loader/worker.py",
        old="""    if config.death_signal:
        die_with_parent()""",
        new="""    if config.death_signal:
        pass""",
        tests=("tests/loader/test_guarantee_parent_death.py",),
        guarantee="loader.md: on Linux workers get the kernel's parent-death signal (a worker "
        "busy in a decoder dies with its parent)",
    ),
    Mutant(
        name="loader-shm-not-unlinked",
        path="datumio/loader/slots.py",
        old="""        for seg in self.segments:
            seg.unlink()""",
        new="""        for seg in self.segments[1:]:
            seg.unlink()""",
        tests=(_LOADER_FAIL + "test_close_gc_and_training_loop_errors_leave_nothing",),
        guarantee="loader.md: close() unlinks every segment; no /dev/shm/datumio_* is left",
    ),
    Mutant(
        name="loader-stale-segments-kept",
        path="datumio/loader/loader.py",
        old="""        remove_stale_segments()
        ring = SlotRing(""",
        new="""        ring = SlotRing(""",
        tests=(_LOADER_FAIL + "test_stale_segments_of_dead_runs_are_removed_at_start",),
        guarantee="loader.md: the next Loader start removes segments whose pid is dead",
    ),
    Mutant(
        name="loader-shm-capacity-unchecked",
        path="datumio/loader/slots.py",
        old="""    if needed > free:""",
        new="""    if needed > 1 << 62:""",
        tests=(_LOADER_FAIL + "test_shm_capacity_is_checked_with_a_clear_message",),
        guarantee="loader.md: /dev/shm free space is checked before allocating",
    ),
    Mutant(
        name="loader-augment-seed-per-worker",
        path="datumio/loader/fill.py",
        old="""        self.streams = SampleStreams(job.seed)""",
        new="""        self.streams = SampleStreams(job.seed + worker_id)""",
        tests=(_LOADER_ITER + "test_same_pixels_whatever_the_worker_count",),
        guarantee="loader.md: the same seed, epoch and position give the same pixels whatever "
        "the number of workers",
    ),
    Mutant(
        name="loader-seed-not-given-to-sampler",
        path="datumio/loader/options.py",
        old="""        fields["seed"] = self.seed
""",
        new="",
        tests=("tests/loader/test_loader_options.py",),
        guarantee="loader.md: seed is the run seed of the sampler and of every augmentation",
    ),
    Mutant(
        name="loader-lease-dropped-early",
        path="datumio/loader/slots.py",
        old="""        self.lease = lease\n""",
        new="""        self.lease = None\n""",
        tests=(_LOADER_ITER + "test_slot_lifetime_follows_references",),
        guarantee="loader.md: a batch you hold is never overwritten (the lease lives as long as "
        "any array or view)",
    ),
    Mutant(
        name="loader-copy-true-not-copied",
        path="datumio/loader/loader.py",
        old="""            arrays = [a.copy() for a in arrays]""",
        new="""            arrays = list(arrays)""",
        tests=(_LOADER_ITER + "test_release_and_copy",),
        guarantee="loader.md: copy=True returns owned arrays and reuses the slot at once",
    ),
    Mutant(
        name="loader-second-iterator-silent",
        path="datumio/loader/loader.py",
        old="""        if self._generation != gen:
            raise LoaderError(""",
        new="""        if self._generation < gen:
            raise LoaderError(""",
        tests=(_FAULTS + "test_a_new_iterator_takes_over_and_the_old_one_raises",),
        guarantee="loader.md: an iterator that was taken over raises LoaderError, never stops "
        "silently",
    ),
    Mutant(
        name="loader-stall-not-reported-early",
        path="datumio/loader/watch.py",
        old="""        self.stall_s = max(_MIN_STALL_S, STALL_FRACTION * batch_timeout_s)""",
        new="""        self.stall_s = max(_MIN_STALL_S, batch_timeout_s)""",
        tests=("tests/loader/test_guarantee_stall.py",),
        guarantee="loader.md: a worker without progress for a tenth of batch_timeout_s is "
        "reported before the timeout",
    ),
    Mutant(
        name="loader-pickle-allowed",
        path="datumio/loader/loader.py",
        old="""    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError(""",
        new="""    def _unused_reduce_ex(self, protocol: object) -> Any:
        raise TypeError(""",
        tests=(_FAULTS + "test_pickling_a_loader_raises_a_clear_type_error",),
        guarantee="loader.md: pickle.dumps(loader) raises TypeError saying what to do",
    ),
    Mutant(
        name="loader-readahead-hints-off",
        path="datumio/loader/worker.py",
        old="""            if not early:
                filler.advise(msg.ids)""",
        new="""            if not early:
                pass""",
        tests=(
            "tests/loader/test_readahead.py::test_workers_hint_their_current_and_next_batch_before_decoding",
        ),
        guarantee="loader.md: with readahead workers hint the records of their current batch",
    ),
    Mutant(
        name="loader-workers-take-sigint",
        path="datumio/loader/worker.py",
        old="""    signal.signal(signal.SIGINT, signal.SIG_IGN)""",
        new="""    signal.signal(signal.SIGINT, signal.default_int_handler)""",
        tests=("tests/loader/test_guarantee_sigint.py",),
        guarantee="loader.md: workers ignore SIGINT (the parent decides)",
    ),
    # -- the sampler (docs/sampling.md) ----------------------------------------------------
    Mutant(
        name="sampler-quota-remainder-off-by-one",
        path="datumio/sampling/_quotas.py",
        old="""        quotas[order[:remainder]] += 1""",
        new="""        quotas[order[: remainder - 1]] += 1""",
        tests=(_QUOTAS[:-2],),
        guarantee="sampling.md: floor(E * p_c) plus one for the E - sum(floor) classes with the "
        "largest fractional parts; sum(q_c) = E",
    ),
    Mutant(
        name="sampler-quota-ties-to-higher-class",
        path="datumio/sampling/_quotas.py",
        old="""        order = np.argsort(-frac, kind="stable")""",
        new="""        order = np.argsort(frac, kind="stable")[::-1]""",
        tests=(_QUOTAS[:-2],),
        guarantee="sampling.md: remainder ties go to the lower class id",
    ),
    Mutant(
        name="sampler-balanced-inverse-frequency",
        path="datumio/sampling/_quotas.py",
        old="""        raw = np.ones(num, dtype=np.float64)""",
        new="""        raw = 1.0 / np.maximum(counts, 1).astype(np.float64)""",
        tests=(_MODES + "test_class_frequencies_in_batches_follow_target",),
        guarantee="sampling.md: balanced gives every class with records 1 / C",
    ),
    Mutant(
        name="sampler-power-exponent-ignored",
        path="datumio/sampling/_quotas.py",
        old="""        exponent = 1.0 if power is None else float(power)""",
        new="""        exponent = 1.0""",
        tests=(_QUOTAS + "test_target_weights_modes",),
        guarantee="sampling.md: power=a targets n_c ** a",
    ),
    Mutant(
        name="sampler-empty-class-not-warned",
        path="datumio/sampling/_quotas.py",
        old="""    skipped = np.flatnonzero(~present & (raw > 0))""",
        new="""    skipped = np.flatnonzero(~present & (raw > 0))[:0]""",
        tests=(_MODES + "test_zero_record_classes_warn_and_are_skipped",),
        guarantee="sampling.md: classes with no records are skipped with a UserWarning",
    ),
    Mutant(
        name="sampler-with-replacement",
        path="datumio/sampling/_sampler.py",
        old="""derive_keys(keys[1], cls, draw // size)""",
        new="""derive_keys(keys[1], cls, draw)""",
        tests=(_MODES + "test_floor_ceil_repeats_and_without_replacement",),
        guarantee="sampling.md: within a class, records are drawn without replacement until the "
        "class is exhausted",
    ),
    Mutant(
        name="sampler-seed-ignored",
        path="datumio/sampling/_sampler.py",
        old="""        seq = np.random.SeedSequence(self.options.seed, spawn_key=(epoch,))""",
        new="""        seq = np.random.SeedSequence(0, spawn_key=(epoch,))""",
        tests=(
            "tests/sampling/test_sampler_resume.py::test_same_seed_same_plan_and_different_epochs_differ",
        ),
        guarantee="sampling.md: position t of epoch e is a pure function of (seed, epoch, t)",
    ),
    Mutant(
        name="sampler-ranks-not-interleaved",
        path="datumio/sampling/_sampler.py",
        old="""            plan_pos = pos * self._world + self._rank
            if self.options.pad:""",
        new="""            plan_pos = pos + self._rank * self._rank_size
            if self.options.pad:""",
        tests=("tests/sampling/test_sampler_distributed.py",),
        guarantee="sampling.md: rank r's i-th record is plan position i * W + r",
    ),
    Mutant(
        name="sampler-set-epoch-resets-position",
        path="datumio/sampling/_sampler.py",
        old="""        if int(epoch) != self._epoch:
            self._epoch, self._position = int(epoch), 0

    def state_dict""",
        new="""        self._epoch, self._position = int(epoch), 0

    def state_dict""",
        tests=("tests/sampling/test_sampler_resume.py",),
        guarantee="sampling.md: set_epoch(e) is a no-op when e is the current epoch (keeps a "
        "resumed position)",
    ),
    Mutant(
        name="sampler-resume-world-size-unchecked",
        path="datumio/sampling/_sampler.py",
        old="""            "world_size": self._world,
            "num_records": self.num_records,
            "options": self.options.fingerprint(),
        }
        self._epoch""",
        new="""            "num_records": self.num_records,
            "options": self.options.fingerprint(),
        }
        self._epoch""",
        tests=(
            "tests/sampling/test_sampler_resume.py::test_load_state_dict_refuses_a_different_setup",
        ),
        guarantee="sampling.md: load_state_dict raises OptionError when the world size differs",
    ),
    Mutant(
        name="resample-sample-fraction-ignored",
        path="datumio/sampling/_resample.py",
        old="""    size = round(sample_fraction * labels.size)""",
        new="""    size = labels.size""",
        tests=("tests/sampling/test_sampler_resample.py",),
        guarantee="sampling.md: resample_data returns round(sample_fraction * len(arr)) entries",
    ),
    Mutant(
        name="remote-workers-keep-shards-open",
        path="datumio/loader/fill.py",
        old=(
            "            self.dataset.retain(np.concatenate([*self.ahead, np.empty(0, np.int64)]))"
        ),
        new="""            pass""",
        tests=(
            "tests/remote/test_remote_loader.py::"
            "test_a_cache_smaller_than_the_dataset_with_the_lockstep_order",
        ),
        guarantee="remote.md: workers close the shards their next batches do not read",
    ),
    Mutant(
        name="remote-cache-evicts-shards-in-use",
        path="datumio/remote/cache.py",
        old="""        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)""",
        new="""        pass""",
        tests=("tests/remote/test_remote_cache.py::test_a_shard_in_use_is_never_evicted",),
        guarantee="remote.md: shards in use are never evicted",
    ),
    Mutant(
        name="remote-resume-trusts-size",
        path="datumio/remote/publish.py",
        old="""    if plain:
        return _md5(source, size)[0].hex() == etag""",
        new="""    if plain:
        return True""",
        tests=(
            "tests/remote/test_remote_upload.py::"
            "test_a_same_size_file_with_other_bytes_is_sent_again",
        ),
        guarantee="remote.md: --resume skips a file only when the server's MD5 matches",
    ),
    Mutant(
        name="sampler-lockstep-ignored",
        path="datumio/sampling/_sampler.py",
        old="""            order = lockstep_order if self.options.lockstep else local_order""",
        new="""            order = local_order""",
        tests=("tests/sampling/test_lockstep.py",),
        guarantee="sampling.md: lockstep keeps every class in the same window",
    ),
    Mutant(
        name="fields-boxes-ignore-augmentation",
        path="datumio/loader/fill.py",
        old="""        write_sample(plan, values, m, views, k)""",
        new="""        write_sample(plan, values, Affine.identity(), views, k)""",
        tests=(
            "tests/fields/test_loader_fields.py::"
            "test_boxes_masks_and_keypoints_follow_the_augmentation",
        ),
        guarantee="fields.md: boxes, keypoints and masks follow the sample's augmentation",
    ),
    Mutant(
        name="loader-workers-start-with-sigint",
        path="datumio/loader/pool.py",
        old="""        with main_hidden(method), sigint_blocked():""",
        new="""        with main_hidden(method):""",
        tests=(
            "tests/loader/test_guarantee_sigint.py::"
            "test_ctrl_c_while_workers_are_starting_leaves_them_running",
        ),
        guarantee="loader.md: workers ignore SIGINT from their first instruction",
    ),
    # -- what cannot work is refused at once (docs/loader.md, "Refused at once") -----------
    Mutant(
        name="loader-workers-unbounded",
        path="datumio/loader/options.py",
        old="""        check_worker_count(self.workers)\n""",
        new="",
        tests=(_REFUSALS + "test_workers_far_beyond_the_cores_are_refused",),
        guarantee="loader.md: workers above 8 per usable core are refused with OptionError",
    ),
    Mutant(
        name="loader-epoch-without-batch-accepted",
        path="datumio/loader/loader.py",
        old="""        sampler.check_batches(self.options.batch_size, self.options.drop_last)\n""",
        new="",
        tests=(_REFUSALS + "test_an_epoch_without_a_batch_is_refused",),
        guarantee="loader.md: a batch size that leaves an epoch without a batch is refused",
    ),
    Mutant(
        name="loader-user-fn-values-wrap",
        path="datumio/augment/pipeline.py",
        old="""    if result.dtype != np.uint8:
        _check_uint8_range(name, result)
""",
        new="",
        tests=(_REFUSALS + "test_a_user_fn_result_a_cast_would_wrap_fails_its_batch",),
        guarantee="loader.md: a user_fn result a cast to uint8 would wrap fails its batch",
    ),
    Mutant(
        name="sampler-weights-of-a-missing-class-skipped",
        path="datumio/sampling/_weights.py",
        old="""        if c is None or c < 0 or (num_classes is not None and c >= num_classes):""",
        new="""        if c is None or c < 0:""",
        tests=(
            _REFUSALS + "test_weights_of_a_class_the_dataset_lacks_are_refused_and_names_are_taken",
        ),
        guarantee="sampling.md: a weights key that is none of the dataset's classes is refused",
    ),
    # -- names from data on a terminal (docs/ingest.md, "How names are printed") -----------
    Mutant(
        name="tools-names-printed-raw",
        path="datumio/tools/render.py",
        old="""    return "\\n".join(printable(line) for line in lines)""",
        new="""    return "\\n".join(lines)""",
        tests=(_ESCAPES + "test_inspect_text_record_and_sampling_show_names_escaped",),
        guarantee="ingest.md: names and paths from data are printed escaped",
    ),
    Mutant(
        name="tools-json-leaves-c1-raw",
        path="datumio/tools/render.py",
        old="""    if text.isprintable():
        return text
    import unicodedata  # only for text that needs a look at each character

    return "".join(
        _json_escape(ch)""",
        new="""    if True:
        return text
    import unicodedata  # only for text that needs a look at each character

    return "".join(
        _json_escape(ch)""",
        tests=(_ESCAPES + "test_inspect_json_and_html_keep_the_exact_names",),
        guarantee="ingest.md: --json writes those characters as JSON escapes",
    ),
    Mutant(
        name="errors-text-not-escaped",
        path="datumio/errors.py",
        old="""        return printable(super().__str__())""",
        new="""        return super().__str__()""",
        tests=(_ESCAPES + "test_a_rejected_path_in_a_stopped_ingest_is_escaped",),
        guarantee="ingest.md: error messages show names and paths escaped",
    ),
    # -- datasets shared by processes (docs/loader.md "Many shards", "A dataset replaced";
    # docs/ingest.md "One writer at a time", "A full disk") ---------------------------------
    Mutant(
        name="shards-open-unbounded",
        path="datumio/shards/handles.py",
        old="""        while len(self._open) >= self.capacity:""",
        new="""        while False:""",
        tests=(
            "tests/faults/test_file_limits.py::"
            "test_every_record_of_more_shards_than_the_limit_is_read[lmdb]",
        ),
        guarantee="loader.md: at most max_open_shards shards are open in a process",
    ),
    Mutant(
        name="shards-replaced-dataset-unpickled",
        path="datumio/shards/identity.py",
        old="""        return current.dataset_id == opened.dataset_id""",
        new="""        return True""",
        tests=(_READERS + "test_workers_started_after_an_overwrite_refuse_the_new_dataset",),
        guarantee="loader.md: a worker started after an overwrite refuses the new dataset",
    ),
    Mutant(
        name="shards-foreign-shard-opened",
        path="datumio/shards/identity.py",
        old="""    if found is not None and found != expected:""",
        new="""    if False:""",
        tests=(_READERS + "test_a_shard_of_the_new_dataset_is_refused_by_a_reader_of_the_old_one",),
        guarantee="loader.md: a reader never opens a shard of the dataset that replaced its own",
    ),
    Mutant(
        name="ingest-append-new-identity",
        path="datumio/ingest/append.py",
        old="""        return self._manifest.dataset_id or plan.dataset_id""",
        new="""        return plan.dataset_id""",
        tests=(_READERS + "test_an_append_under_a_loader_is_not_a_replacement",),
        guarantee="format.md: --append keeps the dataset's identity (an append is no replacement)",
    ),
    Mutant(
        name="ingest-writer-lock-skipped",
        path="datumio/ingest/run.py",
        old="""    with writer_lock(out, options.wait, events=events, stop=stop):""",
        new="""    if True:""",
        tests=(_WRITERS + "test_a_second_append_stops_at_once_naming_the_first",),
        guarantee="ingest.md: one writer at a time per dataset",
    ),
    Mutant(
        name="ingest-full-disk-discards-build",
        path="datumio/ingest/atomic.py",
        old="""    if not (resumable and (resume or isinstance(error, DiskFullError))):""",
        new="""    if True:""",
        tests=(
            "tests/faults/test_full_disk.py::"
            "test_a_full_disk_stops_the_run_and_resume_reuses_every_finished_shard",
        ),
        guarantee="ingest.md: a full disk keeps the finished shards for --resume",
    ),
    Mutant(
        name="ingest-lmdb-writer-lock-file",
        path="datumio/shards/lmdb_backend.py",
        old="""            lock=False,  # no lock file: its page is written through a map""",
        new="""            lock=True,""",
        tests=(
            "tests/faults/test_full_disk.py::"
            "test_a_disk_full_to_its_last_page_when_the_shards_start_is_an_error_not_a_crash",
        ),
        guarantee="ingest.md: a disk full to its last page is DiskFullError, never a crash",
    ),
    # -- stored splits (docs/ingest.md "Splits") -------------------------------------------
    Mutant(
        name="split-groups-ignored",
        path="datumio/ingest/split.py",
        old="""        labels, groups if grouped else None, request.fractions, request.seed""",
        new="""        labels, None, request.fractions, request.seed""",
        tests=("tests/ingest/test_split.py::test_groups_never_cross_splits",),
        guarantee="ingest.md: with groups, every record of a group lands in one split",
    ),
    Mutant(
        name="split-train-loses-a-class",
        path="datumio/sampling/_split.py",
        old="""    room = np.maximum(n - 1, 0)""",
        new="""    room = n""",
        tests=("tests/sampling/test_split_assign.py::test_counts_worked_out_by_hand",),
        guarantee="ingest.md: train keeps at least one record of every class",
    ),
    Mutant(
        name="split-old-directories-kept",
        path="datumio/ingest/split.py",
        old="""        shutil.rmtree(os.path.join(root, fmt.INDEX_DIR, name), ignore_errors=True)
    return splits""",
        new="""        pass
    return splits""",
        tests=(
            "tests/ingest/test_split.py::"
            "test_a_new_split_replaces_the_directory_and_an_open_view_reads_on",
        ),
        guarantee="ingest.md: a new split keeps one split directory back, removes older ones",
    ),
    Mutant(
        name="split-writer-lock-skipped",
        path="datumio/ingest/split.py",
        old="    with writer_lock(root, request.wait, shown=str(path), events=events, stop=stop):",
        new="""    if True:""",
        tests=("tests/ingest/test_split.py::test_a_split_meets_another_writer_as_an_ingest_does",),
        guarantee="ingest.md: a split is one writer at a time, as an ingest",
    ),
    # -- reading stored splits (docs/format.md "Stored splits", docs/loader.md) --------------
    Mutant(
        name="split-view-not-pickled",
        path="datumio/shards/dataset.py",
        old="""            "split": self.split,  # a worker reads the split this view holds""",
        new="""            "split": None,""",
        tests=(
            "tests/loader/test_loader_splits.py::test_workers_read_the_split_and_only_its_records",
        ),
        guarantee="loader.md: the workers of a Loader over a split read that split only",
    ),
    Mutant(
        name="split-class-index-of-dataset-ids",
        path="datumio/shards/splits.py",
        old="""            fmt.CLASS_IDS: class_ids,""",
        new="""            fmt.CLASS_IDS: ids[class_ids],""",
        tests=(
            "tests/shards/test_splits.py::"
            "test_a_split_class_index_is_exact_and_a_sampler_balances_the_split",
        ),
        guarantee="format.md: a split's class index is over its own positions",
    ),
    Mutant(
        name="split-resume-on-another-split",
        path="datumio/loader/resume.py",
        old="""    _check_split(checked, dataset)""",
        new="""    pass""",
        tests=("tests/loader/test_loader_splits.py::test_a_state_resumes_on_its_own_split_only",),
        guarantee="loader.md: a state saved on a split resumes on that split only",
    ),
    Mutant(
        name="writer-publishes-after-an-exception",
        path="datumio/ingest/writer.py",
        old="""        if exc is not None:
            self.abort(exc)
            return""",
        new="""        if exc is not None:
            self.close()
            return""",
        tests=(_WRITER + "test_an_exception_inside_the_with_block_leaves_nothing_at_out",),
        guarantee="ingest.md: an exception inside `with Writer(...)` publishes nothing",
    ),
    Mutant(
        name="stream-splits-dropped",
        path="datumio/ingest/stream.py",
        old="""                splits=tuple(chunk.splits) if self.splits.names else None,""",
        new="""                splits=None,""",
        tests=(_WRITER + "test_samples_given_a_split_are_stored_as_split_views",),
        guarantee="ingest.md: a sample's split is stored as a split view",
    ),
    Mutant(
        name="stream-shuffle-skipped",
        path="datumio/ingest/stream.py",
        old="""            if self.options.shuffle and records.shards:""",
        new="""            if False and records.shards:""",
        tests=(
            _WRITER + "test_shuffle_moves_the_records_into_a_seeded_order_with_everything_they"
            "_carry",
        ),
        guarantee="ingest.md: Writer(shuffle=True) stores the records in a seeded order",
    ),
    Mutant(
        name="stream-resume-redoes-finished-shards",
        path="datumio/ingest/running.py",
        old="""        earlier = _finished(self._root, task.number)""",
        new="""        earlier = None""",
        tests=(
            "tests/ingest/test_stream_resume.py::"
            "test_a_stopped_stream_resumes_reusing_its_finished_shards",
        ),
        guarantee="ingest.md: a resumed run reuses the shards it finished",
    ),
    Mutant(
        name="loader-elastic-seeds-by-rank-position",
        path="datumio/loader/loader.py",
        old="""        plan_positions = self.sampler.plan_positions(positions, epoch)""",
        new="""        plan_positions = positions * self.sampler.world_size + self.sampler.rank""",
        tests=(
            "tests/loader/test_loader_elastic.py::"
            "test_a_record_served_after_the_resume_has_the_pixels_of_the_uninterrupted_run",
        ),
        guarantee="loader.md: after an elastic resume a record keeps its pixels",
    ),
    Mutant(
        name="torchvision-pipeline-unseeded",
        path="datumio/augment/bridge_torchvision.py",
        old="""    torch.default_generator.manual_seed(seed)""",
        new="""    pass""",
        tests=(
            "tests/augment/test_pipeline_bridges.py::"
            "test_a_sample_equals_the_same_pipeline_run_outside_datumio",
        ),
        guarantee="augment.md: a pipeline's draws depend on (seed, epoch, position) only",
    ),
    Mutant(
        name="pipeline-boxes-left-as-stored",
        path="datumio/loader/sample.py",
        old="""            out.append(Boxes(result[name], result.get(f"{name}_classes")))""",
        new="""            out.append(value)""",
        tests=(
            "tests/augment/test_pipeline_bridges.py::"
            "test_a_pipeline_function_gets_the_record_and_its_fields",
        ),
        guarantee="augment.md: boxes come back as the pipeline left them",
    ),
    Mutant(
        name="lightning-other-world-loads-rank-zero-only",
        path="datumio/adapters/lightning.py",
        old="""    return Loader.merge_states(ranks)""",
        new="""    return {**state, "sampler": {**sampler, "world_size": 1}}""",
        tests=(
            "tests/adapters/test_lightning.py::"
            "test_a_checkpoint_of_two_ranks_resumes_on_one_with_each_record_once",
        ),
        guarantee="adapters.md: a Lightning checkpoint resumes on another number of ranks",
    ),
    Mutant(
        name="area-shrink-ignores-flip",
        path="datumio/augment/opencv.py",
        old="""        native(arr, x0, y0, x1, y1, out if arr.ndim == out.ndim else dst, flip)""",
        new="""        native(arr, x0, y0, x1, y1, out if arr.ndim == out.ndim else dst, False)""",
        tests=(
            "tests/augment/test_area.py::"
            "test_writing_into_a_slot_gives_the_resized_box_mirrored_when_asked",
        ),
        guarantee="augment.md: a flipped crop written into its slot is the mirrored resize",
    ),
    Mutant(
        name="sample-streams-ignore-position",
        path="datumio/augment/seeds.py",
        old="""                h = ((position ^ c[2 * dst]) * c[2 * dst + 1]) & _MASK""",
        new="""                h = ((0 ^ c[2 * dst]) * c[2 * dst + 1]) & _MASK""",
        tests=(
            "tests/augment/test_sample_streams.py::test_every_stream_draws_what_sample_rng_draws",
        ),
        guarantee="augment.md: the workers' streams draw exactly what sample_rng draws",
    ),
    Mutant(
        name="warp-region-without-margin",
        path="datumio/augment/pipeline.py",
        old="""_WARP_MARGIN = 3""",
        new="""_WARP_MARGIN = 0""",
        tests=(_ROI + "test_the_affine_recipe_decodes_only_what_its_warp_samples",),
        guarantee="augment.md: the affine recipe's region holds every tap of the warp's filter",
    ),
    Mutant(
        name="warp-region-ignores-wrap-fill",
        path="datumio/augment/pipeline.py",
        old="""    if not inside and spec.fill_mode not in ("constant", "edge"):""",
        new="""    if not inside and spec.fill_mode not in ("constant", "edge", "wrap"):""",
        tests=(_ROI + "test_the_affine_recipe_decodes_only_what_its_warp_samples",),
        guarantee="augment.md: a fill that reads beyond the region takes the whole image",
    ),
    Mutant(
        name="jpeg-region-without-margin",
        path="datumio/augment/jpeg_roi.py",
        old="""_MARGIN = 2""",
        new="""_MARGIN = 0""",
        tests=(_ROI + "test_a_region_is_the_whole_decodes_pixels",),
        guarantee="augment.md: a crop decoded alone has a whole decode's pixels, bit for bit",
    ),
)
