pragma solidity ^0.7.6;

interface IReceiver {
    function onTokensReceived(address from, uint256 amount) external;
}

// A token that notifies the receiver before it moves the balances.
contract HookToken {
    mapping(address => uint256) public balanceOf;

    constructor() {
        balanceOf[msg.sender] = 1000000;
    }

    function transferAndNotify(address to, uint256 amount) external {
        require(balanceOf[msg.sender] >= amount, "balance");
        IReceiver(to).onTokensReceived(msg.sender, amount); // expect: reentrancy
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
    }
}
