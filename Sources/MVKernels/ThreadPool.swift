import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fixed set of worker threads for data-parallel loops. The calling thread takes part, so a
/// pool of N threads starts N − 1 workers. Between jobs the workers spin briefly (a network's
/// operators follow each other within microseconds) and then sleep on a condition variable.
///
/// Results never depend on the thread count: callers split work into disjoint pieces whose
/// outputs do not overlap, and each piece is computed the same way whichever thread runs it.
///
/// The workers hold only the job state (`JobState`), never the pool, so dropping the last
/// reference to the pool runs its deinit, which stops and joins them.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    private let state: JobState
    private var threads: [pthread_t] = []

    public init(threads: Int) {
        threadCount = max(1, threads)
        state = JobState()
        for worker in 1..<threadCount {
            let context = Unmanaged.passRetained(WorkerContext(state: state, worker: worker)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let ctx = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                ctx.state.workerLoop(ctx.worker)
                return nil
            }, context)
            precondition(rc == 0, "cannot start a worker thread")
            self.threads.append(thread)
        }
    }

    deinit {
        state.stop()
        for t in threads { pthread_join(t, nil) }
    }

    private final class WorkerContext {
        let state: JobState
        let worker: Int
        init(state: JobState, worker: Int) {
            self.state = state
            self.worker = worker
        }
    }

    /// Runs `body(index, worker)` for every index in 0..<count, spread over the threads;
    /// `worker` (0..<threadCount) identifies the thread, e.g. to pick its scratch memory.
    /// Returns when all are done. Not reentrant. Making `body` reachable from the workers costs
    /// one small heap object per call (`withoutActuallyEscaping`); loops that run per inference
    /// use `parallelFor(_:tasks:_:)` with a job value, which allocates nothing.
    public func parallelFor(_ count: Int, _ body: (_ index: Int, _ worker: Int) -> Void) {
        guard count > 0 else { return }
        if threadCount == 1 || count == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            parallelFor(count, tasks: count, EachIndex(body: escaping))
        }
    }

    /// Splits 0..<count into `tasks` contiguous ranges and runs `job.run(range, worker:)` for each
    /// on the pool's threads; returns when all are done. Allocates nothing: the job stays in this
    /// call's stack frame and the workers reach it through a pointer and a function specialised
    /// for `Job` (this is inlined into the caller). A closure would need a heap object, and one
    /// stored where its type is generic even a reabstraction thunk per call.
    @inlinable
    public func parallelFor<Job: ParallelRangeJob>(_ count: Int, tasks: Int, _ job: Job) {
        guard count > 0 else { return }
        let tasks = min(max(tasks, 1), count)
        if threadCount == 1 || tasks == 1 {
            job.run(0..<count, worker: 0)
            return
        }
        var frame = RangeJobFrame(job: job, count: count, tasks: tasks)
        withUnsafeMutablePointer(to: &frame) { run(tasks, job: UnsafeRawPointer($0), invoke: RangeJobFrame<Job>.invoke) }
    }

    @usableFromInline
    func run(_ count: Int, job: UnsafeRawPointer, invoke: @escaping (UnsafeRawPointer, Int, Int) -> Void) {
        state.run(count, workers: threadCount - 1, job: job, invoke: invoke)
    }
}

/// Work for `ThreadPool.parallelFor(_:tasks:_:)`: a value holding its operands whose `run` covers
/// a range of units. Ranges run concurrently must write disjoint outputs. Jobs are shared with
/// the worker threads; most hold raw pointers and so declare `@unchecked Sendable`.
public protocol ParallelRangeJob: Sendable {
    func run(_ units: Range<Int>, worker: Int)
}

/// The closure-based loop as a job: one index per task.
private struct EachIndex: ParallelRangeJob, @unchecked Sendable {
    let body: (Int, Int) -> Void
    func run(_ units: Range<Int>, worker: Int) {
        for i in units { body(i, worker) }
    }
}

/// A job and its split, on the calling thread's stack for the loop's duration.
@usableFromInline
struct RangeJobFrame<Job: ParallelRangeJob> {
    @usableFromInline let job: Job
    @usableFromInline let count: Int
    @usableFromInline let tasks: Int

    @inlinable init(job: Job, count: Int, tasks: Int) {
        self.job = job
        self.count = count
        self.tasks = tasks
    }

    /// Task `task` of the frame at `frame`: units [count·task/tasks, count·(task+1)/tasks).
    @inlinable static func invoke(_ frame: UnsafeRawPointer, _ task: Int, _ worker: Int) {
        let f = frame.assumingMemoryBound(to: RangeJobFrame<Job>.self)
        let count = f.pointee.count, tasks = f.pointee.tasks
        let lo = count * task / tasks, hi = count * (task + 1) / tasks
        if lo < hi { f.pointee.job.run(lo..<hi, worker: worker) }
    }
}

/// What the pool's threads share: the current job (closure and index counters), the generation
/// that announces a new job, and the mutex and condition variable that sleeping workers wait on.
private final class JobState: @unchecked Sendable {
    private let generation = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    /// Workers that are done with the current job (and no longer hold its closure).
    private let arrived = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var count = 0
    /// The current job: `invoke(job, index, worker)`.
    private var job: UnsafeRawPointer?
    private var invoke: ((UnsafeRawPointer, Int, Int) -> Void)?
    // Heap-allocated: a pthread mutex or condition must not move, and a stored property's
    // address is only stable for the duration of an inout access.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// Spin iterations before a worker sleeps (a few tens of microseconds).
    private static let spinLimit = 20_000

    init() {
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Wakes every worker and tells it to return.
    func stop() {
        stopping.store(true, ordering: .releasing)
        announce()
    }

    private func announce() {
        pthread_mutex_lock(mutex)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    func run(_ count: Int, workers: Int, job: UnsafeRawPointer, invoke: @escaping (UnsafeRawPointer, Int, Int) -> Void) {
        self.job = job
        self.invoke = invoke
        self.count = count
        nextIndex.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        arrived.store(0, ordering: .relaxed)
        announce()
        runTasks(worker: 0)
        // Every worker checks in once per job, after its last use of the job, so the job (on the
        // caller's stack) does not outlive this call and no worker reads the next job's fields early.
        while finished.load(ordering: .acquiring) < count || arrived.load(ordering: .acquiring) < workers {
            sched_yield()
        }
        self.job = nil
        self.invoke = nil
    }

    private func runTasks(worker: Int) {
        guard let invoke, let job else { return }
        let n = count
        var done = 0
        while true {
            let i = nextIndex.add(1, ordering: .relaxed).oldValue
            if i >= n { break }
            invoke(job, i, worker)
            done += 1
        }
        if done > 0 { finished.add(done, ordering: .releasing) }
    }

    func workerLoop(_ worker: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            // A bare spin would starve a worker sharing a core with the caller on an
            // over-subscribed machine; yielding keeps latency low when cores are free and fair
            // when they are not.
            while current == seen && spins < Self.spinLimit {
                sched_yield()
                spins += 1
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(mutex)
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(condition, mutex) }
                pthread_mutex_unlock(mutex)
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            runTasks(worker: worker)
            arrived.add(1, ordering: .releasing)
        }
    }
}

/// A pthread mutex for the few shared counters of parallel loops (first error, progress).
public final class ThreadLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()

    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

extension ThreadPool {
    /// `parallelFor` for work that can fail and reports progress, as the dataset loops (calibration,
    /// evaluation) need: after the first error no new index starts and that error is rethrown;
    /// `progress(done)` is called from worker 0 with the number of indices finished so far.
    public func parallelForThrowing(_ count: Int, progress: (Int) -> Void = { _ in },
                                    _ body: (_ index: Int, _ worker: Int) throws -> Void) throws {
        var failure: Error?
        var done = 0
        let lock = ThreadLock()
        parallelFor(count) { i, worker in
            if lock.withLock({ failure != nil }) { return }
            do {
                try body(i, worker)
            } catch {
                lock.withLock { if failure == nil { failure = error } }
            }
            let n = lock.withLock { () -> Int in done += 1; return done }
            if worker == 0 { progress(n) }
        }
        if let failure { throw failure }
    }
}
