pragma solidity ^0.6.12;

// The call sits in an internal helper; the caller updates state after it returns.
contract Escrow {
    mapping(address => uint256) public deposits;

    function deposit() external payable {
        deposits[msg.sender] += msg.value;
    }

    function _pay(address payable to, uint256 amount) internal {
        (bool ok, ) = to.call{value: amount}(""); // expect: reentrancy
        require(ok, "payment failed");
    }

    function refund() external {
        uint256 amount = deposits[msg.sender];
        _pay(msg.sender, amount);
        deposits[msg.sender] = 0;
    }
}
