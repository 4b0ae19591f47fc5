pragma solidity ^0.6.12;

// The deposit is zeroed before the helper pays.
contract Escrow {
    mapping(address => uint256) public deposits;

    function deposit() external payable {
        deposits[msg.sender] += msg.value;
    }

    function _pay(address payable to, uint256 amount) internal {
        (bool ok, ) = to.call{value: amount}("");
        require(ok, "payment failed");
    }

    function refund() external {
        uint256 amount = deposits[msg.sender];
        deposits[msg.sender] = 0;
        _pay(msg.sender, amount);
    }
}
