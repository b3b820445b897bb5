# libintdim from Julia with nothing but ccall and @cfunction (no package, no compiler).
#
# UNTESTED HERE: Julia is not installable on the machine this library was written on, so
# this file has never been run. It follows Julia's documented C interface and the public
# header include/intdim.h; please report what breaks.
#
#   INTDIM_LIBRARY=/path/to/build/lib/libintdim.so.0 julia julia/subspace_quadratic.jl
#
# A host owns its parameter vector theta (length D); the library writes
# theta = theta0 + P(theta_d) into it and calls back for the loss and dloss/dtheta.
# Here the "model" is a quadratic, loss = 0.5 |theta - target|^2, trained with d = 20.

const LIB = get(ENV, "INTDIM_LIBRARY", "libintdim.so.0")

# Numbers of enums and macros come from the library, never from copies of the header.
function constant(name::AbstractString)
    value = Ref{Int64}(0)
    rc = ccall((:intdim_constant, LIB), Cint, (Cstring, Ref{Int64}), name, value)
    rc == 0 || error("libintdim has no constant $name")
    return value[]
end

function check(rc::Integer)
    rc == 0 && return nothing
    reason = unsafe_string(ccall((:intdim_strerror, LIB), Cstring, (Cint,), rc))
    detail = unsafe_string(ccall((:intdim_last_error, LIB), Cstring, ()))
    error("libintdim: $reason: $detail")
end

# What the callback needs, reached through the `user` pointer.
mutable struct Quadratic
    target::Vector{Float32}
    calls::Int
end

# intdim_grad_fn: int (*)(void *user, uint64_t step, const float *theta, float *grad,
#                         double *loss)
# A Julia exception must never unwind through C frames: catch everything, return
# non-zero (the library stops with INTDIM_ECALLBACK) and rethrow after the C call.
const PENDING = Ref{Any}(nothing)

function grad_callback(user::Ptr{Cvoid}, step::UInt64, theta::Ptr{Cfloat},
                       grad::Ptr{Cfloat}, loss::Ptr{Cdouble})::Cint
    try
        q = unsafe_pointer_to_objref(user)::Quadratic
        D = length(q.target)
        th = unsafe_wrap(Array, theta, D)  # views of the library's buffers, no copy
        g = unsafe_wrap(Array, grad, D)
        total = 0.0
        @inbounds for i in 1:D
            r = th[i] - q.target[i]
            g[i] = r
            total += Float64(r)^2
        end
        q.calls += 1
        unsafe_store!(loss, 0.5 * total)
        return Cint(0)
    catch err
        PENDING[] = (err, catch_backtrace())
        return Cint(1)
    end
end

function rethrow_pending(rc)
    if PENDING[] !== nothing
        err, bt = PENDING[]
        PENDING[] = nothing
        throw(CapturedException(err, bt))
    end
    check(rc)
end

function main()
    D, d, seed = 1000, 20, UInt64(42)
    grad_fn = @cfunction(grad_callback, Cint,
                         (Ptr{Cvoid}, UInt64, Ptr{Cfloat}, Ptr{Cfloat}, Ptr{Cdouble}))

    proj = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:intdim_proj_create, LIB), Cint,
                (Ptr{Ptr{Cvoid}}, Cint, Csize_t, Csize_t, UInt64),
                proj, constant("INTDIM_PROJ_FASTFOOD"), D, d, seed))

    trainer = Ref{Ptr{Cvoid}}(C_NULL)
    q = Quadratic(randn(Float32, D), 0)
    theta = zeros(Float32, D)  # host buffer; theta0 = its current contents
    # Everything after the projection exists runs inside try/finally, so a failing check
    # frees both handles (destroying a NULL trainer is fine).
    try
        # The exact adjoint: <P x, g> == <x, P^T g>.
        x = randn(Float32, d)
        g = randn(Float32, D)
        Px = Vector{Float32}(undef, D)
        Ptg = Vector{Float32}(undef, d)
        check(ccall((:intdim_proj_apply, LIB), Cint, (Ptr{Cvoid}, Ptr{Cfloat}, Ptr{Cfloat}),
                    proj[], x, Px))
        check(ccall((:intdim_proj_vjp, LIB), Cint,
                    (Ptr{Cvoid}, Ptr{Cfloat}, Ptr{Cfloat}, Ptr{Cfloat}), proj[], C_NULL, g, Ptg))
        println("adjoint check: <Px,g> = ", sum(Float64.(Px) .* g), "  <x,P'g> = ",
                sum(Float64.(x) .* Ptg))

        # q and theta must not move or be freed while the library holds pointers to them.
        GC.@preserve q theta begin
            check(ccall((:intdim_trainer_create, LIB), Cint,
                        (Ptr{Ptr{Cvoid}}, Ptr{Cvoid}, Ptr{Cfloat}, Ptr{Cfloat}, Ptr{Cfloat},
                         Cuint, Ptr{Cvoid}, Ptr{Cvoid}),
                        trainer, proj[], theta, C_NULL, C_NULL, 0, grad_fn,
                        pointer_from_objref(q)))
            check(ccall((:intdim_trainer_set, LIB), Cint, (Ptr{Cvoid}, Cint, Cdouble),
                        trainer[], constant("INTDIM_TRAIN_LR"), 0.05))
            loss0 = Ref{Cdouble}(NaN)
            rethrow_pending(ccall((:intdim_trainer_step, LIB), Cint,
                                  (Ptr{Cvoid}, Ref{Cdouble}), trainer[], loss0))
            metric = Ref{Cdouble}(NaN)
            rethrow_pending(ccall((:intdim_trainer_run, LIB), Cint,
                                  (Ptr{Cvoid}, UInt64, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid},
                                   Ptr{Cvoid}, Ref{Cdouble}),
                                  trainer[], 300, C_NULL, C_NULL, C_NULL, C_NULL, metric))
            loss1 = Ref{Cdouble}(NaN)
            rethrow_pending(ccall((:intdim_trainer_step, LIB), Cint,
                                  (Ptr{Cvoid}, Ref{Cdouble}), trainer[], loss1))
            println("loss: first step $(loss0[]), after 300 steps $(loss1[]) ",
                    "($(q.calls) callbacks, d = $d of D = $D)")
            # the trainer goes before q and theta may move: inside the preserve block
            ccall((:intdim_trainer_destroy, LIB), Cvoid, (Ptr{Cvoid},), trainer[])
            trainer[] = C_NULL
        end
    finally
        ccall((:intdim_trainer_destroy, LIB), Cvoid, (Ptr{Cvoid},), trainer[])
        ccall((:intdim_proj_destroy, LIB), Cvoid, (Ptr{Cvoid},), proj[])
    end
end

main()
